// Compile contracts/*.sol with the pinned solc (npm `solc`, the solcjs WebAssembly build, no
// download) and write one JSON artifact per contract: ABI, creation and runtime bytecode, and
// the compiler version and settings that produced them.
//
//   node contracts/build.js [OUT_DIR]     (default: openattrib/ledger/artifacts)
//
// solc and @openzeppelin/contracts are resolved from tests/node (npm ci --prefix tests/node).
// tests/test_chain_contracts.py runs this into a temporary folder and compares it with the
// committed artifacts byte for byte.
"use strict";

const fs = require("fs");
const path = require("path");

const ROOT = path.resolve(__dirname, "..");
const NODE_DIR = path.join(ROOT, "tests", "node");
const solc = require(require.resolve("solc", { paths: [NODE_DIR] }));
const CONTRACTS = ["ClaimsDistributor", "CheckpointAnchor", "TestToken"];
// shanghai: the newest fork ganache 7.9 executes; py-evm runs it too.
const SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: "shanghai",
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
};

function findImport(name) {
  try {
    return { contents: fs.readFileSync(require.resolve(name, { paths: [NODE_DIR] }), "utf8") };
  } catch (err) {
    return { error: `import not found: ${name}` };
  }
}

const sources = {};
for (const name of CONTRACTS) {
  sources[`contracts/${name}.sol`] = {
    content: fs.readFileSync(path.join(__dirname, `${name}.sol`), "utf8"),
  };
}
const input = { language: "Solidity", sources, settings: SETTINGS };
const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport }));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) process.stderr.write(e.formattedMessage + "\n");
if (errors.length) process.exit(1);

const outDir = path.resolve(process.argv[2] || path.join(ROOT, "openattrib", "ledger", "artifacts"));
fs.mkdirSync(outDir, { recursive: true });
const ozVersion = JSON.parse(
  fs.readFileSync(require.resolve("@openzeppelin/contracts/package.json", { paths: [NODE_DIR] }), "utf8"),
).version;
for (const name of CONTRACTS) {
  const c = output.contracts[`contracts/${name}.sol`][name];
  const artifact = {
    contractName: name,
    source: `contracts/${name}.sol`,
    compiler: { name: "solc", version: solc.version(), settings: SETTINGS },
    openzeppelinContracts: ozVersion,
    abi: c.abi,
    bytecode: "0x" + c.evm.bytecode.object,
    deployedBytecode: "0x" + c.evm.deployedBytecode.object,
  };
  fs.writeFileSync(path.join(outDir, `${name}.json`), JSON.stringify(artifact, null, 1) + "\n");
}

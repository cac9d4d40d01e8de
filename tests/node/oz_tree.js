// Test oracle for tests/test_ledger_evm.py: runs the real @openzeppelin/merkle-tree package.
//
// Reads a JSON list of jobs on stdin and writes a JSON list of answers on stdout.
//   {"op": "build", "values": [...], "leafEncoding": [...], "sortLeaves": true}
//       -> {"dump": tree.dump(), "root": tree.root, "proofs": [tree.getProof(i) for each value]}
//   {"op": "load", "dump": {...}}
//       -> {"root": ..., "proofs": [...]} after StandardMerkleTree.load(dump).validate(),
//          or {"error": message} when the package rejects the dump.
//   {"op": "verify", "root": "0x..", "leafEncoding": [...], "value": [...], "proof": [...]}
//       -> {"valid": StandardMerkleTree.verify(root, leafEncoding, value, proof)}
"use strict";

const { StandardMerkleTree } = require("@openzeppelin/merkle-tree");

function proofsOf(tree) {
  const proofs = [];
  for (const [i] of tree.entries()) proofs.push(tree.getProof(i));
  return proofs;
}

function run(job) {
  try {
    if (job.op === "build") {
      const tree = StandardMerkleTree.of(job.values, job.leafEncoding, {
        sortLeaves: job.sortLeaves !== false,
      });
      return { dump: tree.dump(), root: tree.root, proofs: proofsOf(tree) };
    }
    if (job.op === "load") {
      const tree = StandardMerkleTree.load(job.dump);
      tree.validate();
      return { root: tree.root, proofs: proofsOf(tree) };
    }
    if (job.op === "verify") {
      return { valid: StandardMerkleTree.verify(job.root, job.leafEncoding, job.value, job.proof) };
    }
    return { error: `unknown op ${job.op}` };
  } catch (err) {
    return { error: String(err && err.message ? err.message : err) };
  }
}

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const jobs = JSON.parse(input);
  process.stdout.write(JSON.stringify(jobs.map(run)));
});

// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title Append-only anchor of one openattrib ledger's signed checkpoints.
/// @notice Stores (origin, tree size, RFC 6962 root) of the log's checkpoints. A checkpoint is
/// accepted only when it extends the last one: the publisher checks the log's consistency proof
/// off chain before sending it, and the contract checks it again (RFC 9162 section 2.1.4.2,
/// SHA-256 as in RFC 6962) and records its hash, so a rewritten history cannot be anchored.
contract CheckpointAnchor is Ownable {
    struct Anchored {
        uint64 size;
        bytes32 root;
        bytes32 consistencyProofHash;
        bytes32 noteHash;
    }

    /// @notice The log's origin line; every anchored checkpoint carries it.
    string public origin;
    bytes32 public immutable originHash;
    Anchored[] private _checkpoints;

    event CheckpointAnchored(
        uint256 indexed index, uint64 size, bytes32 root, bytes32 consistencyProofHash, bytes32 noteHash
    );

    error WrongOrigin(bytes32 expected, bytes32 got);
    error NotAnExtension(uint64 lastSize, uint64 size);
    error InconsistentCheckpoint(uint64 lastSize, uint64 size);
    error NoCheckpoint();

    /// SHA-256 of the empty string: the RFC 6962 root of the empty tree.
    bytes32 private constant EMPTY_ROOT = 0xe3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855;

    constructor(string memory origin_, address owner_) Ownable(owner_) {
        origin = origin_;
        originHash = keccak256(bytes(origin_));
    }

    /// @notice Anchor the checkpoint (origin_, size, root); `proof` links the last anchored
    /// checkpoint to it (empty for the first one), `noteHash` is keccak256 of the signed note.
    function anchor(string calldata origin_, uint64 size, bytes32 root, bytes32[] calldata proof, bytes32 noteHash)
        external
        onlyOwner
    {
        bytes32 got = keccak256(bytes(origin_));
        if (got != originHash) revert WrongOrigin(originHash, got);
        (uint64 lastSize, bytes32 lastRoot) = _latest();
        if (size <= lastSize && _checkpoints.length != 0) revert NotAnExtension(lastSize, size);
        if (!verifyConsistency(lastSize, size, lastRoot, root, proof)) {
            revert InconsistentCheckpoint(lastSize, size);
        }
        bytes32 proofHash = keccak256(abi.encodePacked(proof));
        _checkpoints.push(Anchored(size, root, proofHash, noteHash));
        emit CheckpointAnchored(_checkpoints.length - 1, size, root, proofHash, noteHash);
    }

    /// @notice Number of anchored checkpoints.
    function count() external view returns (uint256) {
        return _checkpoints.length;
    }

    /// @notice The checkpoint anchored at position `index` (0 = first).
    function checkpointAt(uint256 index) external view returns (Anchored memory) {
        return _checkpoints[index];
    }

    /// @notice The last anchored checkpoint.
    function latest() external view returns (Anchored memory) {
        if (_checkpoints.length == 0) revert NoCheckpoint();
        return _checkpoints[_checkpoints.length - 1];
    }

    function _latest() private view returns (uint64, bytes32) {
        if (_checkpoints.length == 0) return (0, EMPTY_ROOT);
        Anchored storage a = _checkpoints[_checkpoints.length - 1];
        return (a.size, a.root);
    }

    function _node(bytes32 left, bytes32 right) private pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x01), left, right));
    }

    /// @notice RFC 9162 section 2.1.4.2: does the tree (second, secondRoot) extend (first, firstRoot)?
    function verifyConsistency(
        uint256 first,
        uint256 second,
        bytes32 firstRoot,
        bytes32 secondRoot,
        bytes32[] calldata proof
    ) public pure returns (bool) {
        if (first > second) return false;
        if (first == second) return proof.length == 0 && firstRoot == secondRoot;
        if (first == 0) return proof.length == 0 && firstRoot == EMPTY_ROOT;
        if (proof.length == 0) return false;
        bool powerOfTwo = first & (first - 1) == 0;
        uint256 n = proof.length + (powerOfTwo ? 1 : 0);
        uint256 fn = first - 1;
        uint256 sn = second - 1;
        while (fn & 1 == 1) {
            fn >>= 1;
            sn >>= 1;
        }
        bytes32 fr = powerOfTwo ? firstRoot : proof[0];
        bytes32 sr = fr;
        for (uint256 i = 1; i < n; ++i) {
            bytes32 c = proof[powerOfTwo ? i - 1 : i];
            if (sn == 0) return false;
            if (fn & 1 == 1 || fn == sn) {
                fr = _node(c, fr);
                sr = _node(c, sr);
                if (fn & 1 == 0) {
                    while (fn != 0 && fn & 1 == 0) {
                        fn >>= 1;
                        sn >>= 1;
                    }
                }
            } else {
                sr = _node(sr, c);
            }
            fn >>= 1;
            sn >>= 1;
        }
        return sn == 0 && fr == firstRoot && sr == secondRoot;
    }
}

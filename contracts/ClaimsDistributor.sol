// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title Merkle claims for openattrib allocations, one root per epoch.
/// @notice The owner publishes, per epoch, the root of the OpenZeppelin StandardMerkleTree that
/// openattrib.ledger.evm.export_allocation builds over [address, uint256] leaves, with the
/// epoch's total and a claim deadline. Publishing reserves that total from tokens already sent
/// to this contract, so every published epoch is fully funded. Each claimant calls claim() itself
/// until the deadline; after the deadline the owner may sweep the epoch's unclaimed remainder,
/// and nothing else.
contract ClaimsDistributor is Ownable {
    using SafeERC20 for IERC20;

    struct Epoch {
        bytes32 root;
        uint256 total;
        uint256 claimed;
        uint64 deadline;
        bool swept;
    }

    IERC20 public immutable token;
    /// @notice Tokens owed to published epochs (published totals less claims and sweeps).
    uint256 public reserved;
    mapping(uint256 epoch => Epoch) public epochs;
    /// Claimed bitmap per epoch. The standard leaf has no index, and an export pays each address
    /// at most once, so the bit index is the claimant's address: word = account >> 8, bit = low 8 bits.
    mapping(uint256 epoch => mapping(uint256 word => uint256 bits)) private _claimedBits;

    event EpochPublished(uint256 indexed epoch, bytes32 root, uint256 total, uint64 deadline);
    event Claimed(uint256 indexed epoch, address indexed account, uint256 amount);
    event Swept(uint256 indexed epoch, address indexed to, uint256 amount);

    error EpochAlreadyPublished(uint256 epoch);
    error UnknownEpoch(uint256 epoch);
    error EmptyRoot();
    error DeadlineNotInFuture(uint64 deadline, uint256 nowTimestamp);
    error InsufficientFunding(uint256 needed, uint256 available);
    error NotClaimant(address sender, address account);
    error AlreadyClaimed(uint256 epoch, address account);
    error InvalidProof(uint256 epoch, address account, uint256 amount);
    error ClaimWindowClosed(uint256 epoch, uint64 deadline);
    error DeadlineNotReached(uint256 epoch, uint64 deadline);
    error AlreadySwept(uint256 epoch);

    constructor(IERC20 token_, address owner_) Ownable(owner_) {
        token = token_;
    }

    /// @notice Publish an epoch: its Merkle root, the sum of its claims and its deadline.
    /// The contract must already hold `total` tokens that no other epoch has reserved.
    function publish(uint256 epoch, bytes32 root, uint256 total, uint64 deadline) external onlyOwner {
        if (epochs[epoch].root != bytes32(0)) revert EpochAlreadyPublished(epoch);
        if (root == bytes32(0)) revert EmptyRoot();
        if (deadline <= block.timestamp) revert DeadlineNotInFuture(deadline, block.timestamp);
        uint256 available = token.balanceOf(address(this)) - reserved;
        if (available < total) revert InsufficientFunding(total, available);
        reserved += total;
        epochs[epoch] = Epoch(root, total, 0, deadline, false);
        emit EpochPublished(epoch, root, total, deadline);
    }

    /// @notice Claim `amount` for `account` (the caller) in `epoch` with its Merkle `proof`.
    function claim(uint256 epoch, address account, uint256 amount, bytes32[] calldata proof) external {
        Epoch storage e = epochs[epoch];
        if (e.root == bytes32(0)) revert UnknownEpoch(epoch);
        if (msg.sender != account) revert NotClaimant(msg.sender, account);
        if (block.timestamp > e.deadline) revert ClaimWindowClosed(epoch, e.deadline);
        uint256 key = uint256(uint160(account));
        uint256 mask = 1 << (key & 0xff);
        mapping(uint256 => uint256) storage bits = _claimedBits[epoch];
        if (bits[key >> 8] & mask != 0) revert AlreadyClaimed(epoch, account);
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(account, amount))));
        if (!MerkleProof.verifyCalldata(proof, e.root, leaf)) revert InvalidProof(epoch, account, amount);
        bits[key >> 8] |= mask;
        e.claimed += amount;
        reserved -= amount;
        emit Claimed(epoch, account, amount);
        token.safeTransfer(account, amount);
    }

    /// @notice Whether `account` has claimed in `epoch`.
    function isClaimed(uint256 epoch, address account) external view returns (bool) {
        uint256 key = uint256(uint160(account));
        return _claimedBits[epoch][key >> 8] & (1 << (key & 0xff)) != 0;
    }

    /// @notice After the deadline, send the epoch's unclaimed remainder to `to` (owner only).
    function sweep(uint256 epoch, address to) external onlyOwner returns (uint256 amount) {
        Epoch storage e = epochs[epoch];
        if (e.root == bytes32(0)) revert UnknownEpoch(epoch);
        if (block.timestamp <= e.deadline) revert DeadlineNotReached(epoch, e.deadline);
        if (e.swept) revert AlreadySwept(epoch);
        e.swept = true;
        amount = e.total - e.claimed;
        reserved -= amount;
        emit Swept(epoch, to, amount);
        token.safeTransfer(to, amount);
    }
}

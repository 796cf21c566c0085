// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title MerkleProof: the one tree shape of src/trace/merkle.ts (docs/TRACE.md)
/// @notice `leaf = SHA-256(0x00 || data)`, `node = SHA-256(0x01 || left || right)`, trees padded
///         to a power of two with zero (32 zero bytes) leaves. A proof is the sibling hashes from
///         the leaf up; bit i of the leaf index says whether the running hash is the right (1) or
///         left (0) child at level i, and the index must fit in proof.length bits.
/// @dev SHA-256 is the EVM precompile at address 2 (60 gas + 12 per word).
library MerkleProof {
    /// @notice SHA-256(0x00 || data).
    function leafHash(bytes memory data) internal pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x00), data));
    }

    /// @notice SHA-256(0x01 || left || right).
    function nodeHash(bytes32 left, bytes32 right) internal view returns (bytes32 h) {
        assembly {
            let p := mload(0x40) // scratch above the free pointer, never allocated
            mstore8(p, 1)
            mstore(add(p, 1), left)
            mstore(add(p, 33), right)
            if iszero(staticcall(gas(), 2, p, 65, 0, 32)) { revert(0, 0) }
            h := mload(0)
        }
    }

    /// @notice The root that `leaf` at `index` and its sibling path `proof` hash up to.
    function computeRoot(bytes32 leaf, uint256 index, bytes32[] memory proof) internal view returns (bytes32 h) {
        h = leaf;
        assembly {
            let p := mload(0x40)
            mstore8(p, 1)
            let sib := add(proof, 32)
            let end := add(sib, shl(5, mload(proof)))
            for {} lt(sib, end) { sib := add(sib, 32) } {
                // The running hash is the left child when the index bit is 0 (merkle.ts verifyProof).
                switch and(index, 1)
                case 0 {
                    mstore(add(p, 1), h)
                    mstore(add(p, 33), mload(sib))
                }
                default {
                    mstore(add(p, 1), mload(sib))
                    mstore(add(p, 33), h)
                }
                if iszero(staticcall(gas(), 2, p, 65, 0, 32)) { revert(0, 0) }
                h := mload(0)
                index := shr(1, index)
            }
        }
    }

    /// @notice True when `leaf` sits at `index` under `root` (index < 2^proof.length).
    function verify(bytes32 root, bytes32 leaf, uint256 index, bytes32[] memory proof) internal view returns (bool) {
        // An index with bits above the proof depth names no leaf of this tree.
        if (index >> proof.length != 0) return false;
        return computeRoot(leaf, index, proof) == root;
    }
}

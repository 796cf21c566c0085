// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MerkleProof} from "./lib/MerkleProof.sol";

/// @title MerkleRoot: the root of a whole leaf list, in the one tree shape of lib/MerkleProof.sol
/// @notice MerkleProof verifies one leaf against a root; batches and revealed dispute nodes need
///         the root of a full list instead. This is only that loop: the hashing (`nodeHash`) is
///         MerkleProof's, so the chain has one Merkle implementation (docs/CHAIN.md "Formats").
library MerkleRoot {
    /// @notice Root over `leaves` (already hashed), padded with zero leaves to a power of two, as
    ///         `merkleRoot` in src/trace/merkle.ts; overwrites `leaves`. Zero leaves give bytes32(0).
    function rootInPlace(bytes32[] memory leaves) internal view returns (bytes32) {
        uint256 n = leaves.length;
        if (n == 0) return bytes32(0);
        uint256 width = 1;
        while (width < n) width <<= 1;
        // Level by level in place; at level 0 indices past n are zero padding, above it every
        // entry below `width` has been computed.
        uint256 valid = n;
        while (width > 1) {
            uint256 half = width >> 1;
            for (uint256 i = 0; i < half; i++) {
                bytes32 l = 2 * i < valid ? leaves[2 * i] : bytes32(0);
                bytes32 r = 2 * i + 1 < valid ? leaves[2 * i + 1] : bytes32(0);
                leaves[i] = MerkleProof.nodeHash(l, r);
            }
            valid = half;
            width = half;
        }
        return leaves[0];
    }
}

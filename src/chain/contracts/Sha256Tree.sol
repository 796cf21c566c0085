// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Sha256Tree
/// @notice The project's one Merkle shape (docs/TRACE.md, src/trace/merkle.ts):
///         leaf = sha256(0x00 || data), node = sha256(0x01 || left || right), padded to a power of
///         two with zero leaves. Used for receipt batches and every dispute sub-trace.
library Sha256Tree {
    /// @notice sha256(0x01 || l || r).
    function node(bytes32 l, bytes32 r) internal view returns (bytes32 h) {
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore8(p, 1)
            mstore(add(p, 1), l)
            mstore(add(p, 33), r)
            if iszero(staticcall(gas(), 2, p, 65, 0x00, 0x20)) { revert(0, 0) }
            h := mload(0x00)
        }
    }

    /// @notice sha256(0x00 || data).
    function leaf(bytes memory data) internal pure returns (bytes32) {
        return sha256(abi.encodePacked(uint8(0), data));
    }

    /// @notice Root over `leaves` (already hashed), padded with zero leaves; overwrites `leaves`.
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
                leaves[i] = node(l, r);
            }
            valid = half;
            width = half;
        }
        return leaves[0];
    }

    /// @notice True when `leafHash` sits at `index` under `root` with sibling path `proof`.
    function verify(bytes32 root, bytes32 leafHash, uint256 index, bytes32[] calldata proof) internal view returns (bool) {
        bytes32 h = leafHash;
        for (uint256 i = 0; i < proof.length; i++) {
            h = (index & 1) == 1 ? node(proof[i], h) : node(h, proof[i]);
            index >>= 1;
        }
        return index == 0 && h == root;
    }
}

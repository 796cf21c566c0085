// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MerkleProof} from "../lib/MerkleProof.sol";

/// @title MerkleProofHarness
/// @notice Test-only batch entry points over MerkleProof for differential fuzzing with eth_call.
contract MerkleProofHarness {
    /// @notice For every case i: whether the proof verifies, and the gas `verify` used.
    function verify(bytes32[] calldata roots, bytes32[] calldata leaves, uint256[] calldata indexes, bytes32[][] calldata proofs)
        external
        view
        returns (bool[] memory ok, uint256[] memory g)
    {
        ok = new bool[](roots.length);
        g = new uint256[](roots.length);
        for (uint256 i; i < roots.length; ++i) {
            (ok[i], g[i]) = one(roots[i], leaves[i], indexes[i], proofs[i]);
        }
    }

    function one(bytes32 root, bytes32 leaf, uint256 index, bytes32[] memory proof) private view returns (bool ok, uint256 g) {
        g = gasleft();
        ok = MerkleProof.verify(root, leaf, index, proof);
        g -= gasleft();
    }

    /// @notice leafHash of every data item.
    function leafHashes(bytes[] calldata data) external pure returns (bytes32[] memory h) {
        h = new bytes32[](data.length);
        for (uint256 i; i < data.length; ++i) h[i] = MerkleProof.leafHash(data[i]);
    }

    /// @notice nodeHash of every (left, right) pair.
    function nodeHashes(bytes32[] calldata left, bytes32[] calldata right) external view returns (bytes32[] memory h) {
        h = new bytes32[](left.length);
        for (uint256 i; i < left.length; ++i) h[i] = MerkleProof.nodeHash(left[i], right[i]);
    }
}

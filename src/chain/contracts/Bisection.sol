// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Bisection: position arithmetic of the k-ary descent
/// @notice Shared by DisputeGame and its TypeScript twin src/chain/bisection.ts (fuzzed against
///         each other). A node is (index at its depth, levels left below it).
library Bisection {
    uint8 internal constant LOG_K = 4;

    /// @notice Levels one round covers: min(LOG_K, depthLeft).
    function stride(uint8 depthLeft) internal pure returns (uint8) {
        return depthLeft < LOG_K ? depthLeft : LOG_K;
    }

    /// @notice Child `choice` of node `index`; ok is false when the choice is out of range or its
    ///         subtree holds no leaf in [minLeaf, lastLeaf].
    function descend(uint64 index, uint8 depthLeft, uint256 choice, uint64 minLeaf, uint64 lastLeaf)
        internal
        pure
        returns (bool ok, uint64 next, uint8 left)
    {
        uint8 s = stride(depthLeft);
        if (choice >= (uint256(1) << s)) return (false, 0, 0);
        next = (index << s) | uint64(choice);
        left = depthLeft - s;
        uint256 first = uint256(next) << left;
        uint256 last = ((uint256(next) + 1) << left) - 1;
        ok = !(last < minLeaf || first > lastLeaf);
    }

    /// @notice Depth of the padded binary tree over `n` leaves (0 for one leaf).
    function treeDepth(uint256 n) internal pure returns (uint8 d) {
        while ((uint256(1) << d) < n) d++;
    }

    /// @notice (nPrompt + nOutput - 1) positions times (nLayer + 1) leaves.
    function traceLeafCount(uint32 nPrompt, uint32 nOutput, uint32 nLayer) internal pure returns (uint64) {
        uint256 positions = uint256(nPrompt) + nOutput;
        if (positions > 1) positions -= 1;
        return uint64(positions * (uint256(nLayer) + 1));
    }
}

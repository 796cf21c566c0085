// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Bisection} from "../Bisection.sol";

/// @title BisectionHarness
/// @notice Exposes Bisection's arithmetic over arrays, so one eth_call checks thousands of cases.
contract BisectionHarness {
    /// @notice descend() per case, packed as ok << 72 | left << 64 | next.
    function descendMany(uint64[] calldata index, uint8[] calldata depthLeft, uint256[] calldata choice, uint64[] calldata minLeaf, uint64[] calldata lastLeaf)
        external
        pure
        returns (uint256[] memory out)
    {
        out = new uint256[](index.length);
        for (uint256 i = 0; i < index.length; i++) {
            (bool ok, uint64 next, uint8 left) = Bisection.descend(index[i], depthLeft[i], choice[i], minLeaf[i], lastLeaf[i]);
            out[i] = ok ? (1 << 72) | (uint256(left) << 64) | next : 0;
        }
    }

    /// @notice traceLeafCount and its treeDepth per case, packed as depth << 64 | count.
    function leavesMany(uint32[] calldata nPrompt, uint32[] calldata nOutput, uint32[] calldata nLayer) external pure returns (uint256[] memory out) {
        out = new uint256[](nPrompt.length);
        for (uint256 i = 0; i < nPrompt.length; i++) {
            uint64 n = Bisection.traceLeafCount(nPrompt[i], nOutput[i], nLayer[i]);
            out[i] = (uint256(Bisection.treeDepth(n)) << 64) | n;
        }
    }
}

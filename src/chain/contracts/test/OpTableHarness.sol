// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {OpTable} from "../OpTable.sol";

/// @title OpTableHarness
/// @notice Test-only batch entry point over OpTable, for the differential test against src/chain/opTable.ts.
contract OpTableHarness {
    /// @notice Per case: kind << 8 | isTensorOf(head, layer, opLeaf, name) (1 or 0).
    function probe(bool[] calldata head, uint256[] calldata layer, uint256[] calldata opLeaf, bytes[] calldata name)
        external
        pure
        returns (uint256[] memory out)
    {
        out = new uint256[](head.length);
        for (uint256 i; i < head.length; ++i) {
            out[i] = (uint256(OpTable.kind(head[i], opLeaf[i])) << 8) | (OpTable.isTensorOf(head[i], layer[i], opLeaf[i], name[i]) ? 1 : 0);
        }
    }

    /// @notice OpTable.lastLeaf for a layer (false) and a head (true) transition.
    function lastLeaves() external pure returns (uint64 layer, uint64 head) {
        return (OpTable.lastLeaf(false), OpTable.lastLeaf(true));
    }
}

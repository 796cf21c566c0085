// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MachineState} from "../lib/MachineState.sol";

/// @title MachineStateHarness
/// @notice Test-only batch entry points over MachineState for differential fuzzing with eth_call.
contract MachineStateHarness {
    /// @notice For every case i: whether words [index, index + count) open from the chunk, and the words.
    function words(
        bytes32[] calldata roots,
        uint256[] calldata ns,
        uint256[] calldata indexes,
        uint256[] calldata counts,
        MachineState.Opening[] calldata openings
    ) external view returns (bool[] memory ok, uint32[][] memory w, uint256[] memory g) {
        ok = new bool[](roots.length);
        w = new uint32[][](roots.length);
        g = new uint256[](roots.length);
        for (uint256 i; i < roots.length; ++i) {
            uint256 g0 = gasleft();
            (ok[i], w[i]) = MachineState.words(roots[i], ns[i], indexes[i], counts[i], openings[i]);
            g[i] = g0 - gasleft();
        }
    }

    /// @notice isUpdate for every case.
    function updates(
        bytes32[] calldata pres,
        bytes32[] calldata posts,
        uint256[] calldata slots,
        bytes32[] calldata slotRoots,
        bytes32[][] calldata paths
    ) external view returns (bool[] memory ok) {
        ok = new bool[](pres.length);
        for (uint256 i; i < pres.length; ++i) ok[i] = MachineState.isUpdate(pres[i], posts[i], slots[i], slotRoots[i], paths[i]);
    }

    /// @notice Micro-state leaves.
    function microLeaves(MachineState.MicroState[] calldata s) external pure returns (bytes32[] memory h) {
        h = new bytes32[](s.length);
        for (uint256 i; i < s.length; ++i) h[i] = MachineState.leafOf(s[i]);
    }

    /// @notice Trace leaves v2: layer leaves, then head leaves.
    function traceLeaves(uint32[] calldata pos, uint32[] calldata layer, bytes32[3][] calldata roots, uint32[] calldata tokens)
        external
        pure
        returns (bytes32[] memory layers, bytes32[] memory heads)
    {
        layers = new bytes32[](pos.length);
        heads = new bytes32[](pos.length);
        for (uint256 i; i < pos.length; ++i) {
            layers[i] = MachineState.layerLeaf(pos[i], layer[i], roots[i][0], roots[i][1], roots[i][2]);
            heads[i] = MachineState.headLeaf(pos[i], layer[i], tokens[i], roots[i][0]);
        }
    }
}

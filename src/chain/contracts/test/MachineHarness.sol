// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IMachine} from "../IMachine.sol";
import {MachineState} from "../lib/MachineState.sol";

/// @title MachineHarness
/// @notice Test-only batches over a deployed Machine for the differential tests
///         (src/dispute/machine/machine.evm.test.ts): one eth_call runs many steps, keeping each
///         step's post leaf or revert data and the gas of the external call.
contract MachineHarness {
    /// @notice Machine.step for every (frame, pre, reads) under one context.
    function steps(
        IMachine m,
        IMachine.Ctx calldata c,
        bytes32[] calldata frames,
        MachineState.MicroState[] calldata pres,
        bytes[][] calldata reads
    ) external view returns (bytes32[] memory leaves, bytes[] memory errs, uint256[] memory gas) {
        leaves = new bytes32[](pres.length);
        errs = new bytes[](pres.length);
        gas = new uint256[](pres.length);
        for (uint256 i; i < pres.length; ++i) {
            uint256 g0 = gasleft();
            try m.step(c, frames[i], pres[i], reads[i]) returns (bytes32 h) {
                leaves[i] = h;
            } catch (bytes memory err) {
                errs[i] = err;
            }
            gas[i] = g0 - gasleft();
        }
    }
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {OneStep} from "../OneStep.sol";

/// @title OneStepHarness
/// @notice Test-only batch entry point over OneStep.checkBlockTerm (weight proofs included) for
///         differential tests against the engine with eth_call.
contract OneStepHarness {
    /// @notice For every case i: checkBlockTerm(modelRoot, pre[i], post[i], t[i], c[i]) and its gas.
    function checkBlockTerms(
        bytes32 modelRoot,
        OneStep.BlockStep[] calldata pre,
        OneStep.BlockStep[] calldata post,
        OneStep.TensorLeaf[] calldata t,
        OneStep.ChunkProof[] calldata c
    ) external view returns (bool[] memory ok, uint256[] memory g) {
        ok = new bool[](post.length);
        g = new uint256[](post.length);
        for (uint256 i; i < post.length; ++i) {
            uint256 g0 = gasleft();
            ok[i] = OneStep.checkBlockTerm(modelRoot, pre[i], post[i], t[i], c[i]);
            g[i] = g0 - gasleft();
        }
    }
}

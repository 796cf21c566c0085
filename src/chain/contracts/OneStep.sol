// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {BadPreimage, UnknownOpcode} from "./Errors.sol";
import {SoftFloat} from "./lib/SoftFloat.sol";
import {MerkleProof} from "./lib/MerkleProof.sol";

/// @title OneStep: the judge's single primitive step
/// @notice A primitive-level state is one micro-step, committed as the leaf
///         sha256(0x00 || abi.encode(Step)). The judge re-executes `post` with the canonical
///         arithmetic (docs/ARITHMETIC.md) and, when `post.chain` is set, checks that its first
///         operand is the previous step's result. Opcodes: docs/CHAIN.md "One-step rules".
library OneStep {
    struct Step {
        uint8 opcode;
        uint8 chain; // 1: operand a must equal the previous step's result
        uint32 a;
        uint32 b;
        uint32 result;
    }

    uint8 internal constant F32_ADD = 1;
    uint8 internal constant F32_SUB = 2;
    uint8 internal constant F32_MUL = 3;
    uint8 internal constant F32_DIV = 4;
    uint8 internal constant F32_SQRT = 5;
    uint8 internal constant I32_MULADD = 6; // integer block-dot step: result = a + sext8(b) * sext8(b >> 8)

    /// @notice Leaf hash committing a micro-step.
    function leafOf(Step memory s) internal pure returns (bytes32) {
        return MerkleProof.leafHash(abi.encode(s.opcode, s.chain, s.a, s.b, s.result));
    }

    /// @notice The canonical result of one micro-step's operation.
    function exec(uint8 opcode, uint32 a, uint32 b) internal pure returns (uint32) {
        if (opcode == F32_ADD) return SoftFloat.add(a, b);
        if (opcode == F32_SUB) return SoftFloat.sub(a, b);
        if (opcode == F32_MUL) return SoftFloat.mul(a, b);
        if (opcode == F32_DIV) return SoftFloat.div(a, b);
        if (opcode == F32_SQRT) return SoftFloat.sqrt(a);
        if (opcode == I32_MULADD) {
            // One term of an integer block dot product (ARITHMETIC.md "rowdot": Σ q_i·qa_i in int32):
            // b packs the int8 weight (low byte) and int8 activation (next byte).
            int256 w = int8(uint8(b));
            int256 x = int8(uint8(b >> 8));
            return uint32(uint256(int256(int32(a)) + w * x) & 0xFFFFFFFF);
        }
        revert UnknownOpcode(opcode);
    }

    /// @notice True when `post` follows from `prevResult` (ignored unless post.chain == 1) by one
    ///         correct primitive.
    function check(uint32 prevResult, Step memory post) internal pure returns (bool) {
        if (post.chain == 1 && post.a != prevResult) return false;
        if (post.chain > 1) revert BadPreimage();
        return exec(post.opcode, post.a, post.b) == post.result;
    }
}

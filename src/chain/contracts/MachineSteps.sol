// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IMachine} from "./IMachine.sol";
import {MachineMath} from "./MachineMath.sol";
import {ARITH_V1, ARITH_V2, ModelRegistry} from "./ModelRegistry.sol";
import {BadReadProof, UnknownArith, WrongStepKind} from "./Errors.sol";
import {MachineReads as R} from "./lib/MachineReads.sol";
import {MachineState} from "./lib/MachineState.sol";
import {MachineTable as T} from "./lib/MachineTable.sol";
import {SoftFloat} from "./lib/SoftFloat.sol";
import {CanonMath} from "./lib/CanonMath.sol";
import {Prng} from "./lib/Prng.sol";

// The step kinds of docs/MACHINE.md "Programs (normative)", one contract per family so that each
// stays under EIP-170's 24 KB; Machine dispatches by op code. Every step reads through
// MachineReads (openings checked, BadReadProof(i) otherwise) and mirrors program.ts's step
// function of the same name, binary32 op by binary32 op.

/// @title MachineSteps
/// @notice What both step families share: the MachineMath they call. (Each keeps its own `step`:
///         a shared `step` calling a virtual `run` measured ~40 gas more per step.)
abstract contract MachineSteps {
    /// @notice The heavy scalar steps (EXP, LOG, SIN, COS, SILU, block terms, dequantization).
    MachineMath public immutable math;

    constructor(MachineMath math_) {
        math = math_;
    }
}

/// @title MachineStepsA
/// @notice Weight and elementwise steps: SQ8/RMS_FINAL, NORM, AMAX32/SCALE/QUANT32, BLOCK/FDOT8/FOLD, BIAS, RES, SILU, TOKEN/DEQ (EMBED), and qwen3's per-head SQ8/RMS_FINAL (HEAD_RMS) and HNORM.
contract MachineStepsA is MachineSteps {
    using SoftFloat for uint32;

    constructor(MachineMath math_) MachineSteps(math_) {}

    /// @notice IMachine.step's arguments as Machine.step received them, forwarded unchanged with
    ///         R.TRAILER appended (the step's dims, op, weight type and tensor leaf record:
    ///         Machine.step has checked that the step exists and picked this contract for its op
    ///         code); returns the leaf of the post-state.
    function step(IMachine.Ctx calldata c, bytes32 frame, MachineState.MicroState calldata pre, bytes[] calldata reads)
        external
        view
        returns (bytes32)
    {
        R.Env memory e = R.env(frame, pre);
        uint8 code = e.o.code;
        if (code == T.MATMUL) xMatmul(c, e, reads);
        else if (code == T.RMS_SCALE) xRms(c, e, reads);
        else if (code == T.NORM) {
            (bytes memory w, uint32 t) = R.rdWeight(c, e, 0, e.j, 1, reads, 2);
            uint32 x = R.rdWord(e, e.o.src, e.j, reads, 0).mul(R.rdWord(e, e.o.src2, 0, reads, 1));
            R.set(e, x.mul(R.floatAt(t, w)));
        } else if (code == T.QUANT32 || code == T.QUANT256) xQuant(e, reads, code == T.QUANT32 ? 32 : 256);
        else if (code == T.BIAS) {
            (bytes memory w, uint32 t) = R.rdWeight(c, e, 0, e.j, 1, reads, 1);
            R.set(e, R.rdWord(e, e.o.src, e.j, reads, 0).add(R.floatAt(t, w)));
        } else if (code == T.RES) R.set(e, R.rdWord(e, e.o.src, e.j, reads, 0).add(R.rdWord(e, e.o.src2, e.j, reads, 1)));
        else if (code == T.SILU) R.set(e, math.siluMul(R.rdWord(e, T.S_G, e.j, reads, 0), R.rdWord(e, T.S_U, e.j, reads, 1)));
        else if (code == T.EMBED) xEmbed(c, e, reads);
        else if (code == T.HEAD_RMS) xHeadRms(c, e, reads);
        else if (code == T.HEAD_NORM) {
            // (x_j ⊗ s_h) ⊗ w_d: the head's scale, the norm weight of the element's place in its head
            uint256 hd = e.d.hd;
            (bytes memory w, uint32 t) = R.rdWeight(c, e, 0, e.j % hd, 1, reads, 2);
            uint32 x = R.rdWord(e, e.o.src, e.j, reads, 0).mul(R.rdWord(e, e.o.src2, e.j / hd, reads, 1));
            R.set(e, x.mul(R.floatAt(t, w)));
        }
        // INVARIANT: Machine sends only these codes here.
        else revert WrongStepKind();
        return R.postLeaf(e);
    }



    function xRms(IMachine.Ctx calldata c, R.Env memory e, bytes[] calldata reads) private view {
        uint256 n = e.d.dim;
        if (e.s <= T.groups(0, n)) {
            (uint256 a, uint256 b) = R.piece(0, n, e.s);
            uint32[] memory x = R.rdWords(e, e.o.src, a, b - a, reads, 0);
            for (uint256 i; i < x.length; ++i) x[i] = x[i].mul(x[i]);
            return R.addLanes(e, a, x);
        }
        R.set(e, CanonMath.rmsScale(CanonMath.fold8(e.r), int32(int256(n)), c.config.rmsEpsBits));
    }

    /// @dev HEAD_RMS of head j (qwen3): SQ8 over the head's hd words of src, then RMS_FINAL with n = hd.
    function xHeadRms(IMachine.Ctx calldata c, R.Env memory e, bytes[] calldata reads) private view {
        uint256 hd = e.d.hd;
        if (e.s <= hd / 8) {
            uint256 a = 8 * (e.s - 1);
            uint32[] memory x = R.rdWords(e, e.o.src, e.j * hd + a, 8, reads, 0);
            for (uint256 i; i < 8; ++i) x[i] = x[i].mul(x[i]);
            return R.addLanes(e, a, x);
        }
        R.set(e, CanonMath.rmsScale(CanonMath.fold8(e.r), int32(int256(hd)), c.config.rmsEpsBits));
    }

    function xQuant(R.Env memory e, bytes[] calldata reads, uint256 B) private view {
        uint256 g = B / 32;
        if (e.s == g + 1) {
            (, uint32 id, uint32 da) = CanonMath.blockScale(e.r[1], B == 32);
            uint32 amax = e.r[1];
            R.set(e, da);
            e.r[1] = amax;
            e.r[2] = id;
            return;
        }
        uint256 t = e.s <= g ? e.s - 1 : e.s - g - 2;
        uint32[] memory x = R.rdWords(e, e.o.src, e.j * B + 32 * t, 32, reads, 0);
        // the 32 words as uint32[32], in place (same memory after the length word)
        uint32[32] memory x32;
        assembly ("memory-safe") {
            x32 := add(x, 32)
        }
        if (e.s <= g) e.r[1] = CanonMath.amax32(e.r[1], x32);
        else e.data = abi.encodePacked(e.data, CanonMath.quantize32Packed(x32, e.r[2]));
    }

    function xMatmul(IMachine.Ctx calldata c, R.Env memory e, bytes[] calldata reads) private view {
        uint32 t = e.wtype;
        uint256 B = T.blockSize(t);
        uint256 cols = e.o.wcols;
        uint256 n = B == 0 ? T.groups(0, cols) : cols / B;
        if (e.s > n) return R.set(e, CanonMath.fold8(e.r));
        if (B == 0) {
            (uint256 a, uint256 b) = R.piece(0, cols, e.s);
            (bytes memory w, uint32 wt) = R.rdWeight(c, e, e.j, a, b - a, reads, 0);
            uint32[] memory x = R.rdWords(e, e.o.src, a, b - a, reads, 1);
            for (uint256 i; i < x.length; ++i) x[i] = R.floatAt(wt, w, i).mul(x[i]);
            return R.addLanes(e, a, x);
        }
        uint256 blk = e.s - 1;
        (bytes memory wb,) = R.rdWeight(c, e, e.j, blk, 1, reads, 0);
        (uint32 da, bytes memory qa) = R.rdBlock(e, B == 32 ? e.o.src2 : e.o.src2 + 1, blk, reads, 1);
        uint256 l = blk & 7;
        e.r[l] = e.r[l].add(math.blockTerm(t, wb, qa, da));
    }

    function xEmbed(IMachine.Ctx calldata c, R.Env memory e, bytes[] calldata reads) private view {
        if (e.s == 1) return R.set2(e, 0, R.rdWord(e, T.S_TOK, 0, reads, 0));
        R.WeightOpening memory w = R.weightTensor(c, e, reads, 0);
        (, uint256 bs) = R.blockShape(w.ggmlType);
        // INVARIANT: a type the arithmetic can dequantize (blockShape 0 otherwise).
        if (bs == 0) revert BadReadProof(0);
        uint256 blk = e.j / bs;
        bytes memory raw = R.weightBytes(w, e.r[1], blk, 1, 0);
        R.set(e, math.dequant(w.ggmlType, raw, e.j - blk * bs));
    }
}

/// @title MachineStepsB
/// @notice Attention and sampling steps: FREQ, ROTCS, ROPE, DOT8/FOLD_SCALE, MAX8, EXP, SUM8/FOLD_INV, ACC/ATT_SCALE, SCAN/APPLY, ARGMAX8, LOGIT/RANK8, FIND8, ID/SCALE_T, TEXP, TSUM, PROB, TOPP8/MINP*, KEEP_LOAD/TOTAL8/TARGET/PICK8/PICK_ID.
contract MachineStepsB is MachineSteps {
    using SoftFloat for uint32;

    /// @notice Where a job's arithmetic is read: its model's registration (docs/MACHINE.md "Which
    ///         arithmetic"). Only DOT8 (SCORE) and ACC (ATT) differ between the two.
    ModelRegistry public immutable registry;

    constructor(MachineMath math_, ModelRegistry registry_) MachineSteps(math_) {
        registry = registry_;
    }

    /// @notice IMachine.step's arguments as Machine.step received them, forwarded unchanged with
    ///         R.TRAILER appended (the step's dims, op, weight type and tensor leaf record:
    ///         Machine.step has checked that the step exists and picked this contract for its op
    ///         code); returns the leaf of the post-state.
    function step(IMachine.Ctx calldata c, bytes32 frame, MachineState.MicroState calldata pre, bytes[] calldata reads)
        external
        view
        returns (bytes32)
    {
        R.Env memory e = R.env(frame, pre);
        uint8 code = e.o.code;
        if (code == T.FREQ) R.set(e, math.freq(uint64(e.j), uint32(e.d.hd), c.config.ropeBaseBits));
        else if (code == T.ROTCS) R.set(e, math.rotcs(c.pos, R.rdWord(e, T.S_FR, e.j >> 1, reads, 0), e.j & 1 == 1));
        else if (code == T.ROPE) xRope(e, reads);
        else if (code == T.SCORE) xScore(c, e, reads);
        else if (code == T.MAX) xMax(e, reads);
        else if (code == T.EXPS) R.set(e, math.expDiff(R.rdWord(e, T.S_S, e.j, reads, 0), R.rdWord(e, T.S_M, e.j / e.d.nu, reads, 1)));
        else if (code == T.ZINV) xZinv(e, reads);
        else if (code == T.ATT) xAtt(c, e, reads);
        else if (code == T.PENALTY) xPenalty(c, e, reads);
        else if (code == T.ARGMAX) xArgmax(e, reads);
        else if (code == T.RANK) xRank(e, reads);
        else if (code == T.SORT) xSort(e, reads);
        else if (code == T.TSCALE) {
            if (e.s == 1) R.set2(e, 0, R.rdWord(e, T.S_ID, e.j, reads, 0));
            else R.set(e, R.rdWord(e, e.o.src, e.r[1], reads, 0).div(c.sampling.temperatureBits));
        } else if (code == T.TEXP) R.set(e, math.expDiff(R.rdWord(e, T.S_TL, e.j, reads, 0), R.rdWord(e, T.S_TL, 0, reads, 1)));
        else if (code == T.TSUM) xTsum(e, reads);
        else if (code == T.PROB) R.set(e, R.rdWord(e, T.S_TE, e.j, reads, 0).div(R.rdWord(e, T.S_TZ, 0, reads, 1)));
        else if (code == T.KEEP) xKeep(c, e, reads);
        else if (code == T.DRAW) xDraw(c, e, reads);
        // INVARIANT: Machine sends only these codes here.
        else revert WrongStepKind();
        return R.postLeaf(e);
    }



    function xRope(R.Env memory e, bytes[] calldata reads) private view {
        uint256 hd = e.d.hd;
        uint256 base = e.j - (e.j % hd);
        uint256 dd = e.j % hd;
        uint256 i = e.d.neox ? dd % (hd / 2) : dd >> 1;
        uint256 a = e.d.neox ? base + i : base + 2 * i;
        uint256 b = e.d.neox ? a + hd / 2 : a + 1;
        uint32 x0 = R.rdWord(e, e.o.src, a, reads, 0);
        uint32 x1 = R.rdWord(e, e.o.src, b, reads, 1);
        uint32[] memory cs = R.rdWords(e, T.S_CS, 2 * i, 2, reads, 2);
        if (e.j == b) R.set(e, x0.mul(cs[1]).add(x1.mul(cs[0])));
        else R.set(e, x0.mul(cs[0]).sub(x1.mul(cs[1])));
    }

    function xScore(IMachine.Ctx calldata c, R.Env memory e, bytes[] calldata reads) private view {
        uint256 hd = e.d.hd;
        if (e.s > hd / 8) {
            uint32 inv = CanonMath.ONE.div(CanonMath.i2f(int256(hd)).sqrt());
            return R.set(e, CanonMath.fold8(e.r).mul(inv));
        }
        uint256 h = e.j / e.d.nu;
        uint256 a = 8 * (e.s - 1);
        uint32[] memory q = R.rdWords(e, T.S_QR, h * hd + a, 8, reads, 0);
        uint32[] memory k = R.rdCache(c, e, false, e.j % e.d.nu, T.S_KR, (h / e.d.group) * hd + a, 8, reads, 1);
        if (roundsKv(c)) for (uint256 i; i < 8; ++i) q[i] = q[i].mul(CanonMath.roundHalf(k[i]));
        else for (uint256 i; i < 8; ++i) q[i] = q[i].mul(k[i]);
        R.addLanes(e, a, q);
    }

    /// @dev Whether the job's model is registered under tessera-arith/2, whose attention reads every
    ///      cached K and V value rounded to binary16, R(x) = h2f(f2h(x)) (docs/ARITHMETIC.md step 4).
    function roundsKv(IMachine.Ctx calldata c) private view returns (bool) {
        bytes32 a = registry.arithOf(c.modelRoot);
        if (a == ARITH_V2) return true;
        // INVARIANT: a job is judged under its model's registered arithmetic, never an unknown one as v1.
        if (a != ARITH_V1) revert UnknownArith(a);
        return false;
    }

    function xMax(R.Env memory e, bytes[] calldata reads) private view {
        (uint256 a, uint256 b) = R.piece(e.j * e.d.nu, (e.j + 1) * e.d.nu, e.s);
        uint32[] memory x = R.rdWords(e, T.S_S, a, b - a, reads, 0);
        uint32 m = R.canon(e.r[0]);
        for (uint256 i; i < x.length; ++i) if (CanonMath.gt(x[i], m)) m = x[i];
        R.set(e, m);
    }

    function xZinv(R.Env memory e, bytes[] calldata reads) private view {
        uint256 start = e.j * e.d.nu;
        if (e.s > T.groups(start, start + e.d.nu)) return R.set(e, CanonMath.ONE.div(CanonMath.fold8(e.r)));
        (uint256 a, uint256 b) = R.piece(start, start + e.d.nu, e.s);
        R.addLanes(e, a - start, R.rdWords(e, T.S_E, a, b - a, reads, 0));
    }

    function xAtt(IMachine.Ctx calldata c, R.Env memory e, bytes[] calldata reads) private view {
        uint256 h = e.j / e.d.hd;
        if (e.s > e.d.nu) return R.set(e, e.r[0].mul(R.rdWord(e, T.S_Z, h, reads, 0)));
        uint256 u = e.s - 1;
        uint32 ev = R.rdWord(e, T.S_E, h * e.d.nu + u, reads, 0);
        uint32 v = R.rdCache(c, e, true, u, e.o.src, (h / e.d.group) * e.d.hd + e.j % e.d.hd, 1, reads, 1)[0];
        if (roundsKv(c)) v = CanonMath.roundHalf(v);
        R.set(e, e.r[0].add(ev.mul(v)));
    }

    function xPenalty(IMachine.Ctx calldata c, R.Env memory e, bytes[] calldata reads) private view {
        uint256 n = T.penaltyN(c);
        if (e.s <= n) {
            uint256 u = uint256(c.pos) + 1 - n + e.s - 1;
            uint32 flag = e.r[1] | (R.rdToken(c, u, reads, 0) == e.j ? 1 : 0);
            return R.set2(e, 0, flag);
        }
        uint32 l = R.rdWord(e, T.S_L, e.j, reads, 0);
        uint32 pen = c.sampling.repeatPenaltyBits;
        if (e.r[1] == 0) return R.set(e, R.canon(l));
        R.set(e, CanonMath.gt(l, 0) ? l.div(pen) : l.mul(pen));
    }

    function xArgmax(R.Env memory e, bytes[] calldata reads) private view {
        (uint256 a, uint256 b) = R.piece(0, e.d.vocab, e.s);
        uint32[] memory x = R.rdWords(e, e.o.src, a, b - a, reads, 0);
        uint32 id = e.r[0];
        uint32 best = R.canon(e.r[1]);
        for (uint256 i; i < x.length; ++i) {
            if (CanonMath.gt(x[i], best)) {
                best = x[i];
                id = uint32(a + i);
            }
        }
        R.set2(e, id, best);
    }

    function xRank(R.Env memory e, bytes[] calldata reads) private view {
        if (e.s == 1) return R.set2(e, 0, R.rdWord(e, e.o.src, e.j, reads, 0));
        (uint256 a, uint256 b) = R.piece(0, e.d.vocab, e.s - 1);
        uint32[] memory x = R.rdWords(e, e.o.src, a, b - a, reads, 0);
        uint32 li = e.r[1];
        uint32 n = e.r[0];
        for (uint256 k; k < x.length; ++k) {
            // better: a higher logit, or an equal one and a lower id
            if (CanonMath.gt(x[k], li) || (CanonMath.ge(x[k], li) && CanonMath.le(x[k], li) && a + k < e.j)) n++;
        }
        R.set2(e, n, li);
    }

    function xSort(R.Env memory e, bytes[] calldata reads) private view {
        (uint256 a, uint256 b) = R.piece(0, e.d.vocab, e.s);
        uint32[] memory x = R.rdWords(e, T.S_RK, a, b - a, reads, 0);
        uint32 id = e.r[0];
        for (uint256 k; k < x.length; ++k) if (x[k] == e.j) id = uint32(a + k);
        R.set(e, id);
    }

    function xTsum(R.Env memory e, bytes[] calldata reads) private view {
        if (e.s > T.groups(0, e.d.kk)) return R.set(e, CanonMath.fold8(e.r));
        (uint256 a, uint256 b) = R.piece(0, e.d.kk, e.s);
        R.addLanes(e, a, R.rdWords(e, T.S_TE, a, b - a, reads, 0));
    }

    function xKeep(IMachine.Ctx calldata c, R.Env memory e, bytes[] calldata reads) private view {
        uint256 g = T.groups(0, e.d.kk);
        uint256 s = e.s;
        uint32[8] memory r = e.r;
        if (T.topP(c)) {
            if (s <= g) {
                (uint256 a, uint256 b) = R.piece(0, e.d.kk, s);
                uint32[] memory x = R.rdWords(e, T.S_PR, a, b - a, reads, 0);
                for (uint256 k; k < x.length && r[2] == 0; ++k) {
                    r[1] = r[1].add(x[k]);
                    if (CanonMath.ge(r[1], c.sampling.topPBits)) {
                        r[0] = uint32(a + k + 1);
                        r[2] = 1;
                    }
                }
                return;
            }
            s -= g;
        }
        if (s == 1) {
            r[3] = c.sampling.minPBits.mul(R.rdWord(e, T.S_PR, 0, reads, 0));
            r[4] = 1;
            return;
        }
        if (s <= g + 1) {
            (uint256 a, uint256 b) = R.piece(0, e.d.kk, s - 1);
            uint32[] memory x = R.rdWords(e, T.S_PR, a, b - a, reads, 0);
            for (uint256 k; k < x.length; ++k) {
                uint256 i = a + k;
                if (i == 0 || r[5] != 0 || i >= r[0]) continue;
                if (CanonMath.ge(x[k], r[3])) r[4] = uint32(i + 1);
                else r[5] = 1;
            }
            return;
        }
        R.set(e, r[4]);
    }

    function xDraw(IMachine.Ctx calldata c, R.Env memory e, bytes[] calldata reads) private view {
        uint256 g = T.groups(0, e.d.kk);
        uint32[8] memory r = e.r;
        if (e.s == 1) {
            R.set(e, 0);
            e.r[2] = R.rdWord(e, T.S_KEEP, 0, reads, 0);
            return;
        }
        if (e.s <= g + 1) {
            (uint256 a, uint256 b) = R.piece(0, e.d.kk, e.s - 1);
            uint32[] memory x = R.rdWords(e, T.S_PR, a, b - a, reads, 0);
            for (uint256 k; k < x.length; ++k) if (a + k < r[2]) r[1] = r[1].add(x[k]);
            return;
        }
        if (e.s == g + 2) {
            (, uint32 u) = Prng.rand(c.seed, uint64(uint256(c.pos) + 1 - c.nPrompt));
            r[3] = u.mul(r[1]);
            return;
        }
        if (e.s <= 2 * g + 2) {
            (uint256 a, uint256 b) = R.piece(0, e.d.kk, e.s - g - 2);
            uint32[] memory x = R.rdWords(e, T.S_PR, a, b - a, reads, 0);
            for (uint256 k; k < x.length; ++k) {
                if (r[5] != 0 || a + k >= r[2]) continue;
                r[4] = r[4].add(x[k]);
                if (CanonMath.lt(r[3], r[4])) {
                    r[0] = uint32(a + k);
                    r[5] = 1;
                }
            }
            return;
        }
        uint256 idx = r[5] != 0 ? r[0] : uint256(r[2]) - 1;
        R.set(e, R.rdWord(e, T.S_ID, idx, reads, 0));
    }
}

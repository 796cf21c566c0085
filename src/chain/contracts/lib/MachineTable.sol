// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IMachine} from "../IMachine.sol";
import {CanonMath} from "./CanonMath.sol";
import {UnsupportedMachineShape} from "../Errors.sol";

/// @title MachineTable: the op tables of docs/MACHINE.md, on chain
/// @notice Twin of `layerOps` / `headOps` in src/dispute/machine/program.ts: for a transition
///         (position p, layer l or the head), op k's code, output slot, length, sources and
///         weight tensor; each element's step count and initial registers. Ops are walked over a
///         fixed template, skipping the rows that do not apply (EMBED for l > 0, LOAD TOK for
///         l > 0, the biases but for qwen2, the per-head q/k norms but for qwen3, PENALTY /
///         ARGMAX / the sampling ops by the request).
library MachineTable {
    // op codes (program.ts OpCode)
    uint8 internal constant LOAD = 1;
    uint8 internal constant EMBED = 2;
    uint8 internal constant RMS_SCALE = 3;
    uint8 internal constant NORM = 4;
    uint8 internal constant QUANT32 = 5;
    uint8 internal constant QUANT256 = 6;
    uint8 internal constant MATMUL = 7;
    uint8 internal constant BIAS = 8;
    uint8 internal constant FREQ = 9;
    uint8 internal constant ROTCS = 10;
    uint8 internal constant ROPE = 11;
    uint8 internal constant SCORE = 12;
    uint8 internal constant MAX = 13;
    uint8 internal constant EXPS = 14;
    uint8 internal constant ZINV = 15;
    uint8 internal constant ATT = 16;
    uint8 internal constant RES = 17;
    uint8 internal constant SILU = 18;
    uint8 internal constant PENALTY = 19;
    uint8 internal constant ARGMAX = 20;
    uint8 internal constant STORE = 21;
    uint8 internal constant TOKEN = 22;
    uint8 internal constant RANK = 23;
    uint8 internal constant SORT = 24;
    uint8 internal constant TSCALE = 25;
    uint8 internal constant TEXP = 26;
    uint8 internal constant TSUM = 27;
    uint8 internal constant PROB = 28;
    uint8 internal constant KEEP = 29;
    uint8 internal constant DRAW = 30;
    uint8 internal constant HEAD_RMS = 31;
    uint8 internal constant HEAD_NORM = 32;

    // slots (program.ts SLOT)
    uint8 internal constant S_TOK = 0;
    uint8 internal constant S_X = 1;
    uint8 internal constant S_RS1 = 2;
    uint8 internal constant S_XN1 = 3;
    uint8 internal constant S_A1_32 = 4;
    uint8 internal constant S_Q = 6;
    uint8 internal constant S_K = 7;
    uint8 internal constant S_V = 8;
    uint8 internal constant S_QB = 9;
    uint8 internal constant S_KB = 10;
    uint8 internal constant S_VB = 11;
    uint8 internal constant S_FR = 12;
    uint8 internal constant S_CS = 13;
    uint8 internal constant S_QR = 14;
    uint8 internal constant S_KR = 15;
    uint8 internal constant S_S = 16;
    uint8 internal constant S_M = 17;
    uint8 internal constant S_E = 18;
    uint8 internal constant S_Z = 19;
    uint8 internal constant S_O = 20;
    uint8 internal constant S_A2_32 = 21;
    uint8 internal constant S_P = 23;
    uint8 internal constant S_X2 = 24;
    uint8 internal constant S_RS2 = 25;
    uint8 internal constant S_XN2 = 26;
    uint8 internal constant S_A3_32 = 27;
    uint8 internal constant S_G = 29;
    uint8 internal constant S_U = 30;
    uint8 internal constant S_H = 31;
    uint8 internal constant S_A4_32 = 32;
    uint8 internal constant S_D = 34;
    uint8 internal constant S_X3 = 35;
    uint8 internal constant S_L = 36;
    uint8 internal constant S_PL = 37;
    uint8 internal constant S_NEXT = 38;
    uint8 internal constant S_RK = 39;
    uint8 internal constant S_ID = 40;
    uint8 internal constant S_TL = 41;
    uint8 internal constant S_TE = 42;
    uint8 internal constant S_TZ = 43;
    uint8 internal constant S_PR = 44;
    uint8 internal constant S_KEEP = 45;
    uint8 internal constant S_QS = 46;
    uint8 internal constant S_QN = 47;
    uint8 internal constant S_KS = 48;
    uint8 internal constant S_KN = 49;
    uint8 internal constant NONE = 255;

    // weight tensors an op reads (names: `tensorName`)
    uint8 internal constant T_EMBD = 1;
    uint8 internal constant T_ATTN_NORM = 2;
    uint8 internal constant T_Q = 3;
    uint8 internal constant T_K = 4;
    uint8 internal constant T_V = 5;
    uint8 internal constant T_QB = 6;
    uint8 internal constant T_KB = 7;
    uint8 internal constant T_VB = 8;
    uint8 internal constant T_WO = 9;
    uint8 internal constant T_FFN_NORM = 10;
    uint8 internal constant T_GATE = 11;
    uint8 internal constant T_UP = 12;
    uint8 internal constant T_DOWN = 13;
    uint8 internal constant T_OUT_NORM = 14;
    uint8 internal constant T_OUT = 15;
    uint8 internal constant T_QNORM = 16;
    uint8 internal constant T_KNORM = 17;

    uint32 internal constant NEG_INF = 0xFF800000;

    /// @notice One op of a transition. `src`/`src2` name the slots its programs read (by code:
    ///         RMS_SCALE, QUANT, BIAS, ROPE, RANK, TSCALE, ARGMAX, HEAD_RMS src; NORM and HEAD_NORM
    ///         src, scale slot; MATMUL
    ///         the f32 source and the B = 32 block slot, the B = 256 one being the next slot;
    ///         RES both addends; ATT the V slot). `mat` numbers a MATMUL (Q, K, V, WO, GATE, UP, DOWN, LOGITS).
    struct Op {
        uint8 code;
        uint8 slot;
        bool isBlock;
        uint64 length;
        uint8 src;
        uint8 src2;
        uint8 tensor;
        uint8 mat;
        uint64 wcols; // columns the op's weight tensor must have
    }

    /// @notice The model and position numbers the programs use.
    struct Dims {
        uint256 dim;
        uint256 hd;
        uint256 nh;
        uint256 kvDim;
        uint256 group;
        uint256 ff;
        uint256 vocab;
        uint256 nu; // cached positions attention reads: p + 1, or min(p + 1, W) (Machine.windowedOp)
        uint256 kk; // K: topK when 0 < topK < V, else V
        bool qwen; // qwen2: q/k/v biases
        bool neox; // qwen2, qwen3: RoPE pairs (i, i + hd/2)
        bool qkNorm; // qwen3: per-head q/k RMSNorm
    }

    function dims(IMachine.Ctx calldata c) internal pure returns (Dims memory d) {
        d.dim = c.config.dim;
        d.hd = c.config.headDim;
        d.nh = c.config.nHead;
        d.kvDim = uint256(c.config.nKvHead) * d.hd;
        // INVARIANT: reads of 8 and 32 words stay in one aligned group (program.ts checkShapes),
        // and heads share kv heads evenly.
        if (
            c.config.nKvHead == 0 || d.dim % 8 != 0 || d.hd % 8 != 0 || d.hd == 0 || c.config.ffDim % 8 != 0 || d.kvDim % 8 != 0 || d.kvDim == 0
                || d.nh % c.config.nKvHead != 0
        ) revert UnsupportedMachineShape();
        d.group = d.nh / c.config.nKvHead;
        d.ff = c.config.ffDim;
        d.vocab = c.config.vocab;
        d.nu = uint256(c.pos) + 1;
        uint256 topK = c.sampling.topK;
        d.kk = topK > 0 && topK < d.vocab ? topK : d.vocab;
        d.qwen = c.config.arch == 2;
        d.neox = c.config.arch == 2 || c.config.arch == 3;
        d.qkNorm = c.config.arch == 3;
    }

    /// @notice Whether the transition is the head's.
    function isHead(IMachine.Ctx calldata c) internal pure returns (bool) {
        return c.layer == c.config.nLayer;
    }

    /// @notice Words (or blocks) of slot `slot` in this transition.
    function slotLen(Dims memory d, uint256 slot) internal pure returns (uint256) {
        if (slot == S_TOK || slot == S_RS1 || slot == S_RS2 || slot == S_NEXT || slot == S_TZ || slot == S_KEEP) return 1;
        if (slot == S_X || slot == S_XN1 || slot == S_P || slot == S_X2 || slot == S_XN2 || slot == S_D || slot == S_X3) return d.dim;
        if (slot == 4 || slot == 27) return d.dim % 32 == 0 ? d.dim / 32 : 0;
        if (slot == 5 || slot == 28) return d.dim % 256 == 0 ? d.dim / 256 : 0;
        if (slot == S_Q || slot == S_QB || slot == S_QR || slot == S_O) return d.nh * d.hd;
        if (slot == 21) return (d.nh * d.hd) % 32 == 0 ? d.nh * d.hd / 32 : 0;
        if (slot == 22) return (d.nh * d.hd) % 256 == 0 ? d.nh * d.hd / 256 : 0;
        if (slot == S_K || slot == S_V || slot == S_KB || slot == S_VB || slot == S_KR) return d.kvDim;
        if (slot == S_FR) return d.hd / 2;
        if (slot == S_CS) return d.hd;
        if (slot == S_S || slot == S_E) return d.nh * d.nu;
        if (slot == S_M || slot == S_Z) return d.nh;
        if (slot == S_G || slot == S_U || slot == S_H) return d.ff;
        if (slot == 32) return d.ff % 32 == 0 ? d.ff / 32 : 0;
        if (slot == 33) return d.ff % 256 == 0 ? d.ff / 256 : 0;
        if (slot == S_L || slot == S_PL || slot == S_RK) return d.vocab;
        if (slot == S_ID || slot == S_TL || slot == S_TE || slot == S_PR) return d.kk;
        if (slot == S_QS) return d.nh;
        if (slot == S_KS) return d.kvDim / d.hd;
        if (slot == S_QN) return d.nh * d.hd;
        if (slot == S_KN) return d.kvDim;
        return 0;
    }

    /// @notice Op k of the transition (code 0 when k is not an op) and the number of ops.
    function opAt(IMachine.Ctx calldata c, uint256 k) internal pure returns (Op memory o, uint256 n) {
        return opAt(c, dims(c), k);
    }

    /// @notice opAt with the context's dims already computed (`dims(c)`).
    function opAt(IMachine.Ctx calldata c, Dims memory d, uint256 k) internal pure returns (Op memory o, uint256 n) {
        if (isHead(c)) {
            // teacher forced: TOKEN alone
            if (uint256(c.pos) + 1 < c.nPrompt) {
                if (k == 1) o.code = TOKEN;
                return (o, 1);
            }
            for (uint256 h; h < 17; ++h) {
                if (!headApplies(c, h)) continue;
                if (++n == k) o = headEntry(c, d, h);
            }
            return (o, n);
        }
        // INVARIANT: a layer transition names a layer of the model.
        if (c.layer > c.config.nLayer) revert UnsupportedMachineShape();
        // The layer table's entries t that apply, counted rather than walked: 0 and 1 at layer 0,
        // 2 above it, 3 .. 41 always but 10 .. 12 (qwen2's biases) only for qwen2 and 13 .. 16
        // (qwen3's per-head norms) only for qwen3.
        bool first = c.layer == 0;
        n = (first ? 34 : 33) + (d.qwen ? 3 : 0) + (d.qkNorm ? 4 : 0);
        if (k == 0 || k > n) return (o, n);
        uint256 t = first ? (k < 3 ? k - 1 : k) : k + 1;
        if (!d.qwen && t >= 10) t += 3;
        if (!d.qkNorm && t >= 13) t += 4;
        o = layerEntry(d, t);
    }

    function op(uint8 code, uint8 slot, uint256 len) private pure returns (Op memory o) {
        o.code = code;
        o.slot = slot;
        o.length = uint64(len);
        o.src = NONE;
        o.src2 = NONE;
    }

    function srcs(Op memory o, uint8 src, uint8 src2) private pure returns (Op memory) {
        o.src = src;
        o.src2 = src2;
        return o;
    }

    function quant(Dims memory d, uint8 code, uint8 slot, uint8 src) private pure returns (Op memory o) {
        o = srcs(op(code, slot, slotLen(d, slot)), src, NONE);
        o.isBlock = true;
    }

    function matmul(Dims memory d, uint8 slot, uint8 tensor, uint8 mat, uint8 f32Src, uint8 a32, uint256 cols)
        private
        pure
        returns (Op memory o)
    {
        o = srcs(op(MATMUL, slot, slotLen(d, slot)), f32Src, a32);
        o.tensor = tensor;
        o.mat = mat;
        o.wcols = uint64(cols);
    }

    function withTensor(Op memory o, uint8 tensor, uint256 cols) private pure returns (Op memory) {
        o.tensor = tensor;
        o.wcols = uint64(cols);
        return o;
    }

    /// @dev Template row t of the layer table (docs/MACHINE.md "The layer transition").
    function layerEntry(Dims memory d, uint256 t) private pure returns (Op memory) {
        uint256 qd = d.nh * d.hd;
        if (t == 0) return op(LOAD, S_TOK, 1);
        if (t == 1) return withTensor(op(EMBED, S_X, d.dim), T_EMBD, d.dim);
        if (t == 2) return op(LOAD, S_X, d.dim);
        if (t == 3) return srcs(op(RMS_SCALE, S_RS1, 1), S_X, NONE);
        if (t == 4) return withTensor(srcs(op(NORM, S_XN1, d.dim), S_X, S_RS1), T_ATTN_NORM, d.dim);
        if (t == 5) return quant(d, QUANT32, 4, S_XN1);
        if (t == 6) return quant(d, QUANT256, 5, S_XN1);
        if (t == 7) return matmul(d, S_Q, T_Q, 0, S_XN1, 4, d.dim);
        if (t == 8) return matmul(d, S_K, T_K, 1, S_XN1, 4, d.dim);
        if (t == 9) return matmul(d, S_V, T_V, 2, S_XN1, 4, d.dim);
        if (t == 10) return withTensor(srcs(op(BIAS, S_QB, qd), S_Q, NONE), T_QB, qd);
        if (t == 11) return withTensor(srcs(op(BIAS, S_KB, d.kvDim), S_K, NONE), T_KB, d.kvDim);
        if (t == 12) return withTensor(srcs(op(BIAS, S_VB, d.kvDim), S_V, NONE), T_VB, d.kvDim);
        if (t == 13) return srcs(op(HEAD_RMS, S_QS, d.nh), S_Q, NONE);
        if (t == 14) return withTensor(srcs(op(HEAD_NORM, S_QN, qd), S_Q, S_QS), T_QNORM, d.hd);
        if (t == 15) return srcs(op(HEAD_RMS, S_KS, d.kvDim / d.hd), S_K, NONE);
        if (t == 16) return withTensor(srcs(op(HEAD_NORM, S_KN, d.kvDim), S_K, S_KS), T_KNORM, d.hd);
        if (t == 17) return op(FREQ, S_FR, d.hd / 2);
        if (t == 18) return op(ROTCS, S_CS, d.hd);
        if (t == 19) return srcs(op(ROPE, S_QR, qd), d.qkNorm ? S_QN : d.qwen ? S_QB : S_Q, NONE);
        if (t == 20) return srcs(op(ROPE, S_KR, d.kvDim), d.qkNorm ? S_KN : d.qwen ? S_KB : S_K, NONE);
        if (t == 21) return op(SCORE, S_S, d.nh * d.nu);
        if (t == 22) return op(MAX, S_M, d.nh);
        if (t == 23) return op(EXPS, S_E, d.nh * d.nu);
        if (t == 24) return op(ZINV, S_Z, d.nh);
        if (t == 25) return srcs(op(ATT, S_O, qd), d.qwen ? S_VB : S_V, NONE);
        if (t == 26) return quant(d, QUANT32, 21, S_O);
        if (t == 27) return quant(d, QUANT256, 22, S_O);
        if (t == 28) return matmul(d, S_P, T_WO, 3, S_O, 21, qd);
        if (t == 29) return srcs(op(RES, S_X2, d.dim), S_X, S_P);
        if (t == 30) return srcs(op(RMS_SCALE, S_RS2, 1), S_X2, NONE);
        if (t == 31) return withTensor(srcs(op(NORM, S_XN2, d.dim), S_X2, S_RS2), T_FFN_NORM, d.dim);
        if (t == 32) return quant(d, QUANT32, 27, S_XN2);
        if (t == 33) return quant(d, QUANT256, 28, S_XN2);
        if (t == 34) return matmul(d, S_G, T_GATE, 4, S_XN2, 27, d.dim);
        if (t == 35) return matmul(d, S_U, T_UP, 5, S_XN2, 27, d.dim);
        if (t == 36) return srcs(op(SILU, S_H, d.ff), S_G, S_U);
        if (t == 37) return quant(d, QUANT32, 32, S_H);
        if (t == 38) return quant(d, QUANT256, 33, S_H);
        if (t == 39) return matmul(d, S_D, T_DOWN, 6, S_H, 32, d.ff);
        if (t == 40) return srcs(op(RES, S_X3, d.dim), S_X2, S_D);
        return op(STORE, NONE, 0);
    }

    /// @notice Whether the request penalizes repeats (repeatPenalty ≠ 1 and repeatLastN > 0).
    function penalize(IMachine.Ctx calldata c) internal pure returns (bool) {
        return c.sampling.repeatPenaltyBits != 0x3F800000 && c.sampling.repeatLastN > 0;
    }

    /// @notice Whether sampling is greedy (temperature ±0).
    function greedy(IMachine.Ctx calldata c) internal pure returns (bool) {
        return c.sampling.temperatureBits & 0x7FFFFFFF == 0;
    }

    function headApplies(IMachine.Ctx calldata c, uint256 t) private pure returns (bool) {
        if (t == 6) return penalize(c);
        if (t == 7) return greedy(c);
        if (t >= 8 && t <= 15) return !greedy(c);
        return true;
    }

    /// @dev Template row t of the head table (docs/MACHINE.md "The head transition").
    function headEntry(IMachine.Ctx calldata c, Dims memory d, uint256 t) private pure returns (Op memory) {
        uint8 logits = penalize(c) ? S_PL : S_L;
        if (t == 0) return op(LOAD, S_X, d.dim);
        if (t == 1) return srcs(op(RMS_SCALE, S_RS1, 1), S_X, NONE);
        if (t == 2) return withTensor(srcs(op(NORM, S_XN1, d.dim), S_X, S_RS1), T_OUT_NORM, d.dim);
        if (t == 3) return quant(d, QUANT32, 4, S_XN1);
        if (t == 4) return quant(d, QUANT256, 5, S_XN1);
        if (t == 5) return matmul(d, S_L, T_OUT, 7, S_XN1, 4, d.dim);
        if (t == 6) return op(PENALTY, S_PL, d.vocab);
        if (t == 7) return srcs(op(ARGMAX, S_NEXT, 1), logits, NONE);
        if (t == 8) return srcs(op(RANK, S_RK, d.vocab), logits, NONE);
        if (t == 9) return op(SORT, S_ID, d.kk);
        if (t == 10) return srcs(op(TSCALE, S_TL, d.kk), logits, NONE);
        if (t == 11) return op(TEXP, S_TE, d.kk);
        if (t == 12) return op(TSUM, S_TZ, 1);
        if (t == 13) return op(PROB, S_PR, d.kk);
        if (t == 14) return op(KEEP, S_KEEP, 1);
        if (t == 15) return op(DRAW, S_NEXT, 1);
        return op(STORE, NONE, 0);
    }

    /// @notice Activation block size of a matmul weight type: 32, 256, or 0 for float weights.
    function blockSize(uint32 ggmlType) internal pure returns (uint256) {
        if (ggmlType == 0 || ggmlType == 1 || ggmlType == 30) return 0;
        if (ggmlType == 8 || ggmlType == 2 || ggmlType == 3 || ggmlType == 6 || ggmlType == 7) return 32;
        if (ggmlType >= 10 && ggmlType <= 14) return 256;
        // INVARIANT: the arithmetic defines block terms for these types only.
        revert UnsupportedMachineShape();
    }

    /// @notice Number of aligned 8-word groups covering [a, b) (program.ts groups8), b > a.
    function groups(uint256 a, uint256 b) internal pure returns (uint256) {
        return (b - 1) / 8 - a / 8 + 1;
    }

    /// @notice Micro-steps of element j of op `o` (the element tree has steps + 1 leaves).
    /// @param wtype The ggml type of a MATMUL op's tensor (ignored for other ops).
    function steps(IMachine.Ctx calldata c, Dims memory d, Op memory o, uint256 j, uint32 wtype) internal pure returns (uint256) {
        uint8 code = o.code;
        if (code == EMBED || code == TSCALE) return 2;
        if (code == RMS_SCALE) return groups(0, d.dim) + 1;
        if (code == HEAD_RMS) return d.hd / 8 + 1;
        if (code == QUANT32) return 3;
        if (code == QUANT256) return 17;
        if (code == MATMUL) {
            uint256 cols = o.wcols;
            uint256 b = blockSize(wtype);
            // INVARIANT: a quantized row is whole blocks of its activation block size.
            if (b != 0 && cols % b != 0) revert UnsupportedMachineShape();
            return b == 0 ? groups(0, cols) + 1 : cols / b + 1;
        }
        if (code == SCORE) return d.hd / 8 + 1;
        if (code == MAX) return groups(j * d.nu, (j + 1) * d.nu);
        if (code == ZINV) return groups(j * d.nu, (j + 1) * d.nu) + 1;
        if (code == ATT) return d.nu + 1;
        if (code == PENALTY) return penaltyN(c) + 1;
        if (code == ARGMAX || code == SORT) return groups(0, d.vocab);
        if (code == RANK) return groups(0, d.vocab) + 1;
        if (code == TSUM) return groups(0, d.kk) + 1;
        if (code == KEEP) {
            uint256 g = groups(0, d.kk);
            return (topP(c) ? g : 0) + (minP(c) ? g + 2 : 0);
        }
        if (code == DRAW) return 2 * groups(0, d.kk) + 3;
        return 1;
    }

    /// @notice min(repeatLastN, p + 1): the positions PENALTY scans.
    function penaltyN(IMachine.Ctx calldata c) internal pure returns (uint256) {
        uint256 n = c.sampling.repeatLastN;
        return n < uint256(c.pos) + 1 ? n : uint256(c.pos) + 1;
    }

    /// @notice Whether KEEP runs top-p (topP < 1).
    function topP(IMachine.Ctx calldata c) internal pure returns (bool) {
        return CanonMath.lt(c.sampling.topPBits, 0x3F800000);
    }

    /// @notice Whether KEEP runs min-p (minP > 0).
    function minP(IMachine.Ctx calldata c) internal pure returns (bool) {
        return CanonMath.gt(c.sampling.minPBits, 0);
    }

    /// @notice Registers of element j's initial state (all +0 but MAX, ARGMAX, KEEP).
    function initRegs(Dims memory d, Op memory o) internal pure returns (uint32[8] memory r) {
        if (o.code == MAX) r[0] = NEG_INF;
        if (o.code == ARGMAX) r[1] = NEG_INF;
        if (o.code == KEEP) r[0] = uint32(d.kk);
    }

    /// @notice The GGUF name of weight tensor `t` for layer `layer` ("blk.<l>.<suffix>").
    function tensorName(IMachine.Ctx calldata c, uint8 t) internal pure returns (bytes memory) {
        if (t == T_EMBD) return "token_embd.weight";
        if (t == T_OUT_NORM) return "output_norm.weight";
        if (t == T_OUT) return c.config.tiedEmbeddings ? bytes("token_embd.weight") : bytes("output.weight");
        string memory s;
        if (t == T_ATTN_NORM) s = "attn_norm.weight";
        else if (t == T_Q) s = "attn_q.weight";
        else if (t == T_K) s = "attn_k.weight";
        else if (t == T_V) s = "attn_v.weight";
        else if (t == T_QB) s = "attn_q.bias";
        else if (t == T_KB) s = "attn_k.bias";
        else if (t == T_VB) s = "attn_v.bias";
        else if (t == T_QNORM) s = "attn_q_norm.weight";
        else if (t == T_KNORM) s = "attn_k_norm.weight";
        else if (t == T_WO) s = "attn_output.weight";
        else if (t == T_FFN_NORM) s = "ffn_norm.weight";
        else if (t == T_GATE) s = "ffn_gate.weight";
        else if (t == T_UP) s = "ffn_up.weight";
        else s = "ffn_down.weight";
        return abi.encodePacked("blk.", decimal(c.layer), ".", s);
    }

    function decimal(uint256 v) private pure returns (bytes memory out) {
        if (v == 0) return "0";
        uint256 len;
        for (uint256 x = v; x != 0; x /= 10) len++;
        out = new bytes(len);
        for (; v != 0; v /= 10) out[--len] = bytes1(uint8(48 + (v % 10)));
    }
}

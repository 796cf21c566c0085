// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IMachine} from "../IMachine.sol";
import {BadReadProof, WrongWeightType} from "../Errors.sol";
import {MachineState} from "./MachineState.sol";
import {MachineTable as T} from "./MachineTable.sol";
import {MerkleProof} from "./MerkleProof.sol";
import {SoftFloat} from "./SoftFloat.sol";
import {CanonMath} from "./CanonMath.sol";

/// @title MachineReads: the dispute machine's read openings and register helpers
/// @notice Every read a micro-step makes (docs/MACHINE.md "Reads"), opened against its agreed
///         root: a word or block of the op's pre-frame, a weight block under the model root (the
///         tensor named by the op table), K/V of an earlier trace leaf, a prompt token, a head
///         leaf's token. Each opener reverts `BadReadProof(i)` when opening i does not prove the
///         read. Byte formats: docs/MACHINE.md "Read openings" (abi.encode of the structs below).
library MachineReads {
    using SoftFloat for uint32;


    /// @notice `words(slot, start, count)` / a word slot element: the slot root under the frame and
    ///         the vector chunk holding the words.
    struct WordsOpening {
        bytes32 root;
        bytes32[] framePath;
        uint32 chunkIndex;
        bytes chunk;
        bytes32[] chunkPath;
    }

    /// @notice `block(slot, index)`: the slot root under the frame, the block and its path.
    struct BlockOpening {
        bytes32 root;
        bytes32[] framePath;
        uint32 da;
        bytes qa;
        bytes32[] blockPath;
    }

    /// @notice `weight(tensor, row, start, count)`: the tensor leaf (its name is the op table's,
    ///         never given) under the model root, then the row chunk holding the blocks.
    struct WeightOpening {
        uint32 tensorIndex;
        uint32 ggmlType;
        uint64 rows;
        uint64 cols;
        bytes32 rowRoot;
        bytes32[] tensorPath;
        uint32 chunkIndex;
        bytes chunk;
        bytes32[] chunkPath;
        bytes32[] rowPath;
    }

    /// @notice `kv(which, u, l, start, count)`: the v2 preimage of layer leaf (u, l) under the trace
    ///         root (leaf u·(nLayer+1)+l), then the chunk of its K or V root.
    struct KVOpening {
        bytes32 x;
        bytes32 k;
        bytes32 v;
        bytes32[] tracePath;
        uint32 chunkIndex;
        bytes chunk;
        bytes32[] chunkPath;
    }

    /// @notice `headToken(u)`: head leaf u's v2 preimage under the trace root.
    struct HeadOpening {
        uint32 token;
        bytes32 logitsRoot;
        bytes32[] tracePath;
    }

    /// @notice Everything one step needs besides ctx and the openings.
    struct Env {
        T.Dims d;
        T.Op o;
        bytes32 frame;
        uint256 k;
        uint256 j;
        uint256 s; // the step executed: pre.step + 1
        uint32 wtype; // a MATMUL's proven weight type
        uint256 wleaf; // a MATMUL's recorded tensor entry: its leaf hash's top 224 bits | type + 1
        uint32[8] r;
        bytes data;
    }

    /// @notice What Machine.step appends to its own calldata when it forwards a step to
    ///         MachineStepsA/B: abi.encode(Dims, Op, uint32 wtype, uint256 wleaf), 23 words.
    uint256 internal constant TRAILER = 23 * 32;

    /// @dev The Env of a forwarded step: frame and pre-state from the step's own arguments, the
    ///      dims, op and weight type Machine.step computed (and checked the step against) from the
    ///      trailer it appended.
    function env(bytes32 frame, MachineState.MicroState calldata pre) internal pure returns (Env memory e) {
        (e.d, e.o, e.wtype, e.wleaf) = abi.decode(msg.data[msg.data.length - TRAILER:], (T.Dims, T.Op, uint32, uint256));
        e.frame = frame;
        e.k = pre.op;
        e.j = pre.elem;
        e.s = uint256(pre.step) + 1;
        e.r = pre.r;
        e.data = pre.data;
    }

    /// @dev The leaf of the post-state of step e.s.
    function postLeaf(Env memory e) internal pure returns (bytes32) {
        return MachineState.leafOf(MachineState.MicroState(uint32(e.k), uint64(e.j), uint64(e.s), e.r, e.data));
    }


    function opening(bytes[] calldata reads, uint256 i) internal pure returns (bytes calldata) {
        // INVARIANT: one opening per read of the step.
        if (i >= reads.length) revert BadReadProof(i);
        return reads[i];
    }

    /// @dev Words [start, start + count) of word slot `slot` of the pre-frame.
    function rdWords(Env memory e, uint256 slot, uint256 start, uint256 count, bytes[] calldata reads, uint256 i)
        internal
        view
        returns (uint32[] memory w)
    {
        WordsOpening memory o = abi.decode(opening(reads, i), (WordsOpening));
        bool ok = MachineState.isSlot(e.frame, slot, o.root, o.framePath);
        if (ok) (ok, w) = MachineState.words(o.root, T.slotLen(e.d, slot), start, count, MachineState.Opening(o.chunkIndex, o.chunk, o.chunkPath));
        // INVARIANT: the words are the pre-frame slot's.
        if (!ok) revert BadReadProof(i);
    }

    function rdWord(Env memory e, uint256 slot, uint256 index, bytes[] calldata reads, uint256 i) internal view returns (uint32) {
        return rdWords(e, slot, index, 1, reads, i)[0];
    }

    /// @dev Block `index` of block slot `slot` of the pre-frame.
    function rdBlock(Env memory e, uint256 slot, uint256 index, bytes[] calldata reads, uint256 i)
        internal
        view
        returns (uint32 da, bytes memory qa)
    {
        BlockOpening memory o = abi.decode(opening(reads, i), (BlockOpening));
        uint256 n = T.slotLen(e.d, slot);
        bytes32 leaf = MerkleProof.leafHash(abi.encode(o.da, o.qa));
        // INVARIANT: the block is leaf `index` of the pre-frame slot's block tree.
        if (
            !MachineState.isSlot(e.frame, slot, o.root, o.framePath) || index >= n || o.blockPath.length != depthOf(n)
                || !MerkleProof.verify(o.root, leaf, index, o.blockPath)
        ) revert BadReadProof(i);
        return (o.da, o.qa);
    }

    /// @dev Decodes a weight opening and checks its tensor leaf: the op's tensor by name, its
    ///      columns, a matmul's rows and ggml type.
    function weightTensor(IMachine.Ctx calldata c, Env memory e, bytes[] calldata reads, uint256 i)
        internal
        view
        returns (WeightOpening memory w)
    {
        w = abi.decode(opening(reads, i), (WeightOpening));
        bytes memory name = T.tensorName(c, e.o.tensor);
        bytes32 leaf = MerkleProof.leafHash(
            abi.encodePacked(le32(uint32(name.length)), name, le32(w.ggmlType), le64(w.rows), le64(w.cols), w.rowRoot)
        );
        // INVARIANT: the tensor the op table names, under the job's model root (leaf 0 is the config):
        // a matmul's leaf is the one proveWeightType recorded from that root (no path carried),
        // another op's is proven by its path.
        if (
            e.o.code == T.MATMUL
                ? uint256(leaf) >> 32 != e.wleaf >> 32
                : w.tensorIndex == 0 || !MerkleProof.verify(c.modelRoot, leaf, w.tensorIndex, w.tensorPath)
        ) revert BadReadProof(i);
        // INVARIANT: its shape is the one the op multiplies (columns = the activation's length).
        if (w.cols != e.o.wcols || (e.o.code == T.MATMUL && w.rows != e.o.length)) revert BadReadProof(i);
        // INVARIANT: a matmul's programs were sized for its proven type.
        if (e.o.code == T.MATMUL && w.ggmlType != e.wtype) revert WrongWeightType(w.ggmlType, e.wtype);
    }

    /// @dev Raw bytes of `count` blocks from block `start` of row `row` of the proven tensor `w`.
    function weightBytes(WeightOpening memory w, uint256 row, uint256 start, uint256 count, uint256 i)
        internal
        view
        returns (bytes memory raw)
    {
        (uint256 bb, uint256 bs) = blockShape(w.ggmlType);
        uint256 per = 2048 / bb;
        if (per == 0) per = 1;
        uint256 off = (start % per) * bb;
        // INVARIANT: the blocks lie in the row and in the one chunk opened.
        if (
            bb == 0 || row >= w.rows || (start + count) * bs > w.cols || start / per != w.chunkIndex
                || (start + count - 1) / per != w.chunkIndex || off + count * bb > w.chunk.length
                || w.chunkIndex >> w.chunkPath.length != 0
        ) revert BadReadProof(i);
        bytes32 rowCommit = MerkleProof.computeRoot(MerkleProof.leafHash(w.chunk), w.chunkIndex, w.chunkPath);
        // INVARIANT: the chunk is the row's, the row the tensor's.
        if (!MerkleProof.verify(w.rowRoot, rowCommit, row, w.rowPath)) revert BadReadProof(i);
        raw = new bytes(count * bb);
        bytes memory ch = w.chunk;
        assembly ("memory-safe") {
            mcopy(add(raw, 32), add(add(ch, 32), off), mload(raw))
        }
    }

    function rdWeight(IMachine.Ctx calldata c, Env memory e, uint256 row, uint256 start, uint256 count, bytes[] calldata reads, uint256 i)
        internal
        view
        returns (bytes memory raw, uint32 ggmlType)
    {
        WeightOpening memory w = weightTensor(c, e, reads, i);
        return (weightBytes(w, row, start, count, i), w.ggmlType);
    }

    /// @dev Words of K (after RoPE) or V of trace leaf (u, l), u < p.
    function rdKV(IMachine.Ctx calldata c, Env memory e, bool v, uint256 u, uint256 start, uint256 count, bytes[] calldata reads, uint256 i)
        internal
        view
        returns (uint32[] memory w)
    {
        KVOpening memory o = abi.decode(opening(reads, i), (KVOpening));
        bytes32 leaf = MachineState.layerLeaf(uint32(u), c.layer, o.x, o.k, o.v);
        uint256 index = u * (uint256(c.config.nLayer) + 1) + c.layer;
        bool ok = MerkleProof.verify(c.traceRoot, leaf, index, o.tracePath);
        if (ok) (ok, w) = MachineState.words(v ? o.v : o.k, e.d.kvDim, start, count, MachineState.Opening(o.chunkIndex, o.chunk, o.chunkPath));
        // INVARIANT: K/V of an earlier position come from its agreed trace leaf.
        if (!ok) revert BadReadProof(i);
    }

    /// @dev K or V words of cached position u (0 .. n_u − 1, position p + 1 − n_u + u): a trace leaf
    ///      before p, the frame's slot at p.
    function rdCache(IMachine.Ctx calldata c, Env memory e, bool v, uint256 u, uint256 slot, uint256 start, uint256 count, bytes[] calldata reads, uint256 i)
        internal
        view
        returns (uint32[] memory)
    {
        // the n_u cached positions are the last ones, p + 1 − n_u .. p (a window: n_u = min(p + 1, W))
        uint256 pos = uint256(c.pos) + 1 - e.d.nu + u;
        if (pos < c.pos) return rdKV(c, e, v, pos, start, count, reads, i);
        return rdWords(e, slot, start, count, reads, i);
    }

    /// @dev Prompt token `index` from the request's prompt root (opening: MachineState.Opening).
    function promptToken(IMachine.Ctx calldata c, uint256 index, bytes calldata rd, uint256 i) internal view returns (uint32 w) {
        bool ok;
        (ok, w) = MachineState.word(c.promptRoot, c.nPrompt, index, abi.decode(rd, (MachineState.Opening)));
        // INVARIANT: the token is the client's signed prompt's.
        if (!ok) revert BadReadProof(i);
    }

    /// @dev The nextToken of head leaf `pos` under the trace root.
    function headToken(IMachine.Ctx calldata c, uint256 pos, HeadOpening memory h, uint256 i) internal view returns (uint32) {
        uint256 nl = c.config.nLayer;
        bytes32 leaf = MachineState.headLeaf(uint32(pos), uint32(nl), h.token, h.logitsRoot);
        // INVARIANT: the head leaf is the agreed trace's at index pos·(nLayer+1) + nLayer.
        if (!MerkleProof.verify(c.traceRoot, leaf, pos * (nl + 1) + nl, h.tracePath)) revert BadReadProof(i);
        return h.token;
    }

    /// @dev The token consumed at position u: prompt[u], or head leaf (u − 1)'s nextToken.
    function rdToken(IMachine.Ctx calldata c, uint256 u, bytes[] calldata reads, uint256 i) internal view returns (uint32) {
        bytes calldata rd = opening(reads, i);
        if (u < c.nPrompt) return promptToken(c, u, rd, i);
        return headToken(c, u - 1, abi.decode(rd, (HeadOpening)), i);
    }

    /// @dev r = [v].
    function set(Env memory e, uint32 v) internal pure {
        uint32[8] memory r;
        r[0] = v;
        e.r = r;
    }

    /// @dev r = [a, b].
    function set2(Env memory e, uint32 a, uint32 b) internal pure {
        uint32[8] memory r;
        r[0] = a;
        r[1] = b;
        e.r = r;
    }

    /// @dev The canonical NaN for any NaN (the TypeScript twin's registers pass through binary32 values).
    function canon(uint32 x) internal pure returns (uint32) {
        return CanonMath.isNaN(x) ? CanonMath.NAN : x;
    }

    /// @dev SUM8 lanes: x_i into lane (first + i) mod 8.
    function addLanes(Env memory e, uint256 first, uint32[] memory x) internal pure {
        for (uint256 i; i < x.length; ++i) {
            uint256 l = (first + i) & 7;
            e.r[l] = e.r[l].add(x[i]);
        }
    }

    /// @dev Piece s (1-based) of the aligned 8-word groups covering [start, end) (program.ts groups8).
    function piece(uint256 start, uint256 end, uint256 s) internal pure returns (uint256 a, uint256 b) {
        uint256 g = start / 8 + s - 1;
        a = s == 1 ? start : g * 8;
        b = (g + 1) * 8 < end ? (g + 1) * 8 : end;
    }

    /// @dev Bytes and elements per GGUF block (float types: one element), (0, 0) for other types.
    function blockShape(uint32 t) internal pure returns (uint256 bytes_, uint256 elems) {
        if (t == 0) return (4, 1);
        if (t == 1 || t == 30) return (2, 1);
        if (t == 8) return (34, 32);
        if (t == 2) return (18, 32);
        if (t == 3) return (20, 32);
        if (t == 6) return (22, 32);
        if (t == 7) return (24, 32);
        if (t == 10) return (84, 256);
        if (t == 11) return (110, 256);
        if (t == 12) return (144, 256);
        if (t == 13) return (176, 256);
        if (t == 14) return (210, 256);
    }

    /// @dev Element i of float-type weight bytes as binary32 bits (F32, F16, BF16).
    function floatAt(uint32 t, bytes memory w, uint256 i) internal pure returns (uint32) {
        if (t == 0) return MachineState.wordAt(w, i);
        uint16 h = uint16(uint8(w[2 * i])) | (uint16(uint8(w[2 * i + 1])) << 8);
        if (t == 1) return SoftFloat.h2f(h);
        // INVARIANT: norm weights, biases and float matmuls are float types.
        if (t != 30) revert WrongWeightType(t, 0);
        return uint32(h) << 16;
    }

    function floatAt(uint32 t, bytes memory w) internal pure returns (uint32) {
        return floatAt(t, w, 0);
    }

    /// @dev Depth of the padded tree over n leaves.
    function depthOf(uint256 n) internal pure returns (uint256 d) {
        while ((uint256(1) << d) < n) d++;
    }

    function le32(uint32 x) internal pure returns (bytes4) {
        return MachineState.le32(x);
    }

    function le64(uint64 x) internal pure returns (bytes8) {
        x = ((x & 0xFF00FF00FF00FF00) >> 8) | ((x & 0x00FF00FF00FF00FF) << 8);
        x = ((x & 0xFFFF0000FFFF0000) >> 16) | ((x & 0x0000FFFF0000FFFF) << 16);
        return bytes8((x >> 32) | (x << 32));
    }
}

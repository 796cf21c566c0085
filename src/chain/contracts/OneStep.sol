// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {BadPreimage, BadRowProof, BadTensorProof, UnknownOpcode} from "./Errors.sol";
import {SoftFloat} from "./lib/SoftFloat.sol";
import {BlockDot} from "./lib/BlockDot.sol";
import {Prng} from "./lib/Prng.sol";
import {MerkleProof} from "./lib/MerkleProof.sol";

/// @title OneStep: the judge's single primitive step
/// @notice A primitive-level state is one micro-step, committed as the leaf
///         sha256(0x00 || abi.encode(Step)). The judge re-executes `post` with the canonical
///         arithmetic (docs/ARITHMETIC.md) and, when `post.chain` is set, checks that its first
///         operand is the previous step's result. Two richer micro-states have their own leaf
///         formats: BLOCK_TERM (one block of a weight-row dot product, the weight block proven
///         against the model root) and RAND (one sampling draw under the job's seed).
///         Opcodes and leaf formats: docs/CHAIN.md "One-step rules".
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
    uint8 internal constant BLOCK_TERM = 7; // SUM8 lane (b mod 8) += term_b of a proven weight block
    uint8 internal constant RAND = 8; // u bits of RAND(seed, step)

    /// @notice Micro-state after block `blockIndex` of the dot product of weight row `row` of the
    ///         tensor at leaf `tensorIndex` of the model tree with a quantized activation.
    ///         Leaf: sha256(0x00 || abi.encode(uint8 7, tensorIndex, row, blockIndex, da, acc, qa)).
    struct BlockStep {
        uint32 tensorIndex; // the tensor's leaf index in the model tree (0 is the config leaf)
        uint64 row;
        uint32 blockIndex;
        uint32 da; // activation block scale d_a[b], binary32 bits
        uint32[8] acc; // the eight SUM8 lane accumulators AFTER this block (binary32 bits)
        bytes qa; // activation block q_a[b*B .. b*B+B), int8 bytes
    }

    /// @notice Target bytes of a row chunk (docs/TRACE.md "Model root").
    uint256 internal constant ROW_CHUNK_BYTES = 2048;

    /// @notice Micro-state of one sampling draw: u = RAND(seed, step) as binary32 bits.
    ///         Leaf: sha256(0x00 || abi.encode(uint8 8, step, u)).
    struct RandStep {
        uint64 step;
        uint32 u;
    }

    /// @notice Leaf hash committing a micro-step.
    function leafOf(Step memory s) internal pure returns (bytes32) {
        return MerkleProof.leafHash(abi.encode(s.opcode, s.chain, s.a, s.b, s.result));
    }

    /// @notice Leaf hash committing a BLOCK_TERM micro-state.
    function blockLeafOf(BlockStep memory s) internal pure returns (bytes32) {
        return MerkleProof.leafHash(abi.encode(BLOCK_TERM, s.tensorIndex, s.row, s.blockIndex, s.da, s.acc, s.qa));
    }

    /// @notice Leaf hash committing a RAND micro-state.
    function randLeafOf(RandStep memory s) internal pure returns (bytes32) {
        return MerkleProof.leafHash(abi.encode(RAND, s.step, s.u));
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

    /// @notice A tensor leaf of the model tree (docs/TRACE.md "Model root") with its index and path:
    ///         what the provider proves once when the game enters a matmul op (DisputeGame.expandTensor).
    struct TensorLeaf {
        uint32 tensorIndex;
        bytes name;
        uint32 ggmlType;
        uint64 rows;
        uint64 cols;
        bytes32 rowRoot;
        bytes32[] tensorPath;
    }

    /// @notice One chunk of a weight row with its paths to the row commitment and to the row root
    ///         of a tensor (what the game asks per BLOCK_TERM step, once the tensor is proven).
    struct ChunkProof {
        uint32 chunkIndex;
        bytes chunk;
        bytes32[] chunkPath;
        bytes32[] rowPath;
    }

    /// @notice Element-level state of a matmul op after output row `row`: its value (binary32 bits),
    ///         the state before it (so the op's last element state commits the whole output vector)
    ///         and the activation state the op multiplies.
    ///         Leaf: sha256(0x00 || abi.encode(uint8 9, row, value, prev, act)).
    struct ElementState {
        uint64 row;
        uint32 value;
        bytes32 prev;
        bytes32 act;
    }

    /// @notice The state after an op whose output feeds matmuls (OpTable.actSource): `root32` and
    ///         `root256` are Merkle roots over the output's quantized blocks for B = 32 and B = 256
    ///         (leaf b = sha256(0x00 || abi.encode(uint32 da_b, bytes qa_b)); zero when B does not
    ///         divide the length), `outputs` the SHA-256 of the output vector(s).
    ///         Leaf: sha256(0x00 || abi.encode(uint8 11, uint64 op, root32, root256, outputs)).
    struct ActState {
        uint64 op;
        bytes32 root32;
        bytes32 root256;
        bytes32 outputs;
    }

    uint8 internal constant ELEMENT = 9;
    uint8 internal constant ACT_STATE = 11;

    /// @notice Leaf hash committing an element-level state of a matmul op.
    function elementLeafOf(ElementState memory s) internal pure returns (bytes32) {
        return MerkleProof.leafHash(abi.encode(ELEMENT, s.row, s.value, s.prev, s.act));
    }

    /// @notice Leaf hash committing an activation state.
    function actLeafOf(ActState memory s) internal pure returns (bytes32) {
        return MerkleProof.leafHash(abi.encode(ACT_STATE, s.op, s.root32, s.root256, s.outputs));
    }

    /// @notice Leaf hash of one quantized activation block in an activation root.
    function actBlockLeaf(uint32 da, bytes memory qa) internal pure returns (bytes32) {
        return MerkleProof.leafHash(abi.encode(da, qa));
    }

    /// @notice True when `post` is one correct block of a row dot product: its weight block comes
    ///         from chunk `c` of row `post.row` of tensor `t`, proven under `modelRoot` at leaf
    ///         `post.tensorIndex` (reverts BadTensorProof / BadRowProof otherwise, also when the
    ///         proven chunk is not the one holding block `blockIndex`), and its lanes equal the lanes
    ///         before it with lane `blockIndex mod 8` ⊕ term_b (BlockDot.term). Lanes before block 0
    ///         are all +0 (SUM8's start); before block b > 0 they are `pre.acc`, where `pre`
    ///         (already checked against the agreed pre-state) must be block b - 1 of the same row.
    ///         A post-state the provider committed that breaks these rules (other row in pre, block
    ///         out of range, wrong activation length, a type without block terms) is a wrong step:
    ///         false, not a revert. The game itself proves the tensor once and the chunk per step
    ///         (DisputeGame.expandTensor, Judge.blockTerm); this whole check serves the harness.
    function checkBlockTerm(bytes32 modelRoot, BlockStep memory pre, BlockStep memory post, TensorLeaf memory t, ChunkProof memory c)
        internal
        view
        returns (bool)
    {
        provenTensor(modelRoot, post.tensorIndex, t.name, t.ggmlType, t.rows, t.cols, t.rowRoot, t.tensorPath);
        provenRowChunk(t.rowRoot, t.rows, post.row, c.chunkIndex, c.chunk, c.chunkPath, c.rowPath);
        return blockLanes(t.ggmlType, t.cols, pre, post, c.chunkIndex, c.chunk);
    }

    /// @notice The lane rule of checkBlockTerm for a chunk already proven to be chunk `chunkIndex`
    ///         of the row `post` names, in a tensor of `ggmlType` with `cols` columns.
    function blockLanes(uint32 ggmlType, uint64 cols, BlockStep memory pre, BlockStep memory post, uint32 chunkIndex, bytes memory chunk)
        internal
        pure
        returns (bool)
    {
        uint32[8] memory lanes;
        if (post.blockIndex > 0) {
            if (pre.tensorIndex != post.tensorIndex || pre.row != post.row || uint256(pre.blockIndex) + 1 != post.blockIndex) return false;
            lanes = pre.acc;
        }
        (uint256 blockBytes, uint256 actBytes) = blockShape(ggmlType);
        if (blockBytes == 0 || post.qa.length != actBytes) return false;
        // INVARIANT: the block lies inside the row (cols is proven with the tensor leaf).
        if (uint256(post.blockIndex) * actBytes >= cols) return false;
        // The chunk must be the one holding the block: chunk c covers blocks [c * k, (c + 1) * k).
        // Its index is bound by chunkPath (an index needs exactly the row tree's depth of bits).
        uint256 perChunk = ROW_CHUNK_BYTES / blockBytes;
        if (perChunk == 0) perChunk = 1;
        uint256 off = (uint256(post.blockIndex) % perChunk) * blockBytes;
        if (uint256(post.blockIndex) / perChunk != chunkIndex || off + blockBytes > chunk.length) revert BadRowProof(post.row);
        bytes memory blk = slice(chunk, off, blockBytes);
        uint32 term = BlockDot.term(ggmlType, blk, post.qa, post.da);
        uint256 lane = post.blockIndex & 7;
        lanes[lane] = SoftFloat.add(lanes[lane], term);
        for (uint256 i = 0; i < 8; i++) if (lanes[i] != post.acc[i]) return false;
        return true;
    }

    /// @notice Reverts BadTensorProof unless the tensor leaf with these fields is leaf
    ///         `tensorIndex >= 1` under `modelRoot` (leaf 0 is the config leaf).
    function provenTensor(
        bytes32 modelRoot,
        uint32 tensorIndex,
        bytes memory name,
        uint32 ggmlType,
        uint64 rows,
        uint64 cols,
        bytes32 rowRoot,
        bytes32[] memory tensorPath
    ) internal view {
        bytes memory leafData = abi.encodePacked(le32(uint32(name.length)), name, le32(ggmlType), le64(rows), le64(cols), rowRoot);
        // INVARIANT: leaf 0 is the config leaf; a tensor is any later leaf whose data hashes into the root.
        if (tensorIndex == 0 || !MerkleProof.verify(modelRoot, MerkleProof.leafHash(leafData), tensorIndex, tensorPath)) {
            revert BadTensorProof(tensorIndex);
        }
    }

    /// @notice Reverts BadRowProof unless `chunk` is chunk `chunkIndex` of row `row < rows` under `rowRoot`.
    function provenRowChunk(
        bytes32 rowRoot,
        uint64 rows,
        uint64 row,
        uint32 chunkIndex,
        bytes memory chunk,
        bytes32[] memory chunkPath,
        bytes32[] memory rowPath
    ) internal view {
        // The row commitment is the root of the row's chunk tree; it is the row tree's leaf as is.
        if (chunkIndex >> chunkPath.length != 0) revert BadRowProof(row);
        bytes32 rowCommit = MerkleProof.computeRoot(MerkleProof.leafHash(chunk), chunkIndex, chunkPath);
        if (row >= rows || !MerkleProof.verify(rowRoot, rowCommit, row, rowPath)) revert BadRowProof(row);
    }

    /// @notice SUM8's closing tree over the eight lanes (docs/ARITHMETIC.md): lanes l and l + 4,
    ///         then 0 + 2 and 1 + 3, then the two halves; binary32 bits in and out.
    function fold(uint32[8] memory a) internal pure returns (uint32) {
        uint32 even = SoftFloat.add(SoftFloat.add(a[0], a[4]), SoftFloat.add(a[2], a[6]));
        uint32 odd = SoftFloat.add(SoftFloat.add(a[1], a[5]), SoftFloat.add(a[3], a[7]));
        return SoftFloat.add(even, odd);
    }

    /// @notice True when u of RAND(seed, post.step) has exactly the claimed bits.
    function checkRand(uint64 seed, RandStep memory post) internal pure returns (bool) {
        (, uint32 u) = Prng.rand(seed, post.step);
        return u == post.u;
    }

    /// @notice Bytes per weight block and per activation block of a type with block terms, (0, 0)
    ///         for any other type (docs/ONESTEP.md "Block terms").
    function blockShape(uint32 ggmlType) internal pure returns (uint256 blockBytes, uint256 actBytes) {
        if (ggmlType == BlockDot.Q8_0) return (34, 32);
        if (ggmlType == BlockDot.Q4_0) return (18, 32);
        if (ggmlType == BlockDot.Q4_K) return (144, 256);
        if (ggmlType == BlockDot.Q6_K) return (210, 256);
        return (0, 0);
    }

    /// @dev A fresh copy of b[off .. off + len) (the caller checked the range).
    function slice(bytes memory b, uint256 off, uint256 len) private pure returns (bytes memory out) {
        out = new bytes(len);
        assembly ("memory-safe") {
            mcopy(add(out, 32), add(add(b, 32), off), len)
        }
    }

    /// @dev x as 4 little-endian bytes.
    function le32(uint32 x) private pure returns (bytes4) {
        x = ((x & 0xFF00FF00) >> 8) | ((x & 0x00FF00FF) << 8);
        return bytes4((x >> 16) | (x << 16));
    }

    /// @dev x as 8 little-endian bytes.
    function le64(uint64 x) private pure returns (bytes8) {
        x = ((x & 0xFF00FF00FF00FF00) >> 8) | ((x & 0x00FF00FF00FF00FF) << 8);
        x = ((x & 0xFFFF0000FFFF0000) >> 16) | ((x & 0x0000FFFF0000FFFF) << 16);
        return bytes8((x >> 32) | (x << 32));
    }
}

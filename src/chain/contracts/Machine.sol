// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IMachine} from "./IMachine.sol";
import {MachineStepsA, MachineStepsB} from "./MachineSteps.sol";
import {ModelRegistry} from "./ModelRegistry.sol";
import {MachineReads as R} from "./lib/MachineReads.sol";
import {BadReadProof, BadTensorProof, NoSuchStep, UnknownWeightType, WrongStepKind, WrongWeightType} from "./Errors.sol";
import {MachineState} from "./lib/MachineState.sol";
import {MachineTable as T} from "./lib/MachineTable.sol";
import {MerkleProof} from "./lib/MerkleProof.sol";
import {SoftFloat} from "./lib/SoftFloat.sol";
import {CanonMath} from "./lib/CanonMath.sol";
import {Prng} from "./lib/Prng.sol";

/// @title Machine: the dispute machine's judge (IMachine)
/// @notice The Solidity twin of src/dispute/machine/program.ts (docs/MACHINE.md "Programs
///         (normative)"): the op tables (MachineTable), every element program's step kinds, the
///         one-step ops LOAD / STORE / TOKEN, and each read a step makes, recomputed from (ctx, op,
///         element, step, pre registers) and opened against its agreed root: the op's pre-frame
///         (slot root, then the chunk or block), the model root (tensor leaf named by the op table,
///         then the row chunk), the trace root (K/V of leaf (u, l), a head leaf's token) or the
///         prompt root. Byte formats of the openings: docs/MACHINE.md "Read openings". The long
///         scalar functions and block terms run in MachineMath (EIP-170).
contract Machine is IMachine {
    using SoftFloat for uint32;

    /// @notice Weight and elementwise steps; attention and sampling steps (EIP-170 split).
    MachineStepsA public immutable stepsA;
    MachineStepsB public immutable stepsB;
    /// @notice Where a job's attention window is read (MachineStepsB's registry): a sliding-window
    ///         model's attention ops run over min(p + 1, W) cached positions (docs/MACHINE.md
    ///         "Sliding window").
    ModelRegistry public immutable registry;

    /// @notice Proven tensor leaves: model root => keccak256(tensor name) => the leaf hash's top
    ///         224 bits | type + 1 in the low 32 (0: not proven). A matmul's weight reads check their
    ///         tensor leaf against it, in the slot its type is read from anyway, instead of carrying
    ///         the leaf's path to the model root (docs/MACHINE.md "Gas").
    mapping(bytes32 => mapping(bytes32 => uint256)) private types;

    /// @notice Emitted once per (model root, tensor) whose type is proven.
    event WeightTypeProven(bytes32 indexed modelRoot, bytes name, uint32 ggmlType);

    constructor(MachineStepsA a, MachineStepsB b) {
        stepsA = a;
        stepsB = b;
        registry = b.registry();
    }

    /// @inheritdoc IMachine
    function proveWeightType(
        bytes32 modelRoot,
        bytes calldata name,
        uint32 tensorIndex,
        uint32 ggmlType,
        uint64 rows,
        uint64 cols,
        bytes32 rowRoot,
        bytes32[] calldata tensorPath
    ) external {
        bytes32 leaf = MerkleProof.leafHash(abi.encodePacked(le32(uint32(name.length)), name, le32(ggmlType), le64(rows), le64(cols), rowRoot));
        // INVARIANT: a type is recorded only from the model root's own tensor leaf (leaf 0 is the config).
        if (tensorIndex == 0 || !MerkleProof.verify(modelRoot, leaf, tensorIndex, tensorPath)) revert BadTensorProof(tensorIndex);
        bytes32 key = keccak256(name);
        if (types[modelRoot][key] != 0) return;
        types[modelRoot][key] = (uint256(leaf) >> 32 << 32) | (ggmlType + 1);
        emit WeightTypeProven(modelRoot, name, ggmlType);
    }

    /// @inheritdoc IMachine
    function weightType(bytes32 modelRoot, bytes calldata name) external view returns (bool known, uint32 ggmlType) {
        uint32 t = uint32(types[modelRoot][keccak256(name)]);
        return (t != 0, t == 0 ? 0 : t - 1);
    }

    /// @dev The recorded entry (leaf tag | type + 1) of a MATMUL op's tensor; 0 for other ops,
    ///      which do not need it.
    function matEntry(Ctx calldata c, T.Op memory o) private view returns (uint256 v) {
        if (o.code != T.MATMUL) return 0;
        bytes memory name = T.tensorName(c, o.tensor);
        v = types[c.modelRoot][keccak256(name)];
        // INVARIANT: a matmul's program depends on its weight type, proven once per model.
        if (v == 0) revert UnknownWeightType(c.modelRoot, name);
    }

    /// @dev The proven type of a MATMUL op's tensor (0 for other ops).
    function matType(Ctx calldata c, T.Op memory o) private view returns (uint32) {
        uint256 v = matEntry(c, o);
        return v == 0 ? 0 : uint32(v) - 1;
    }

    /// @notice The head STORE's proof: NEXT's token and L's root in the pre-frame, and the head
    ///         leaf p − 1 (its token must not end the answer; ignored for p < nPrompt).
    struct HeadStoreProof {
        uint32 next;
        bytes32[] nextPath;
        bytes32 logitsRoot;
        bytes32[] logitsPath;
        R.HeadOpening prev;
    }

    // ------------------------------------------------------------------ IMachine

    /// @inheritdoc IMachine
    function opCount(Ctx calldata c) external pure returns (uint256 n) {
        (, n) = T.opAt(c, 0);
    }

    /// @inheritdoc IMachine
    /// @dev STORE and TOKEN write no slot: slot 255.
    function op(Ctx calldata c, uint256 k) external view returns (bool isOne, uint8 slot, bool isBlock, uint64 length) {
        T.Op memory o = windowedOp(c, T.dims(c), k);
        // INVARIANT: ops are numbered 1 .. opCount.
        if (o.code == 0) revert NoSuchStep(k, 0, 0);
        if (o.code == T.TOKEN) o.slot = T.NONE;
        return (isOneStep(o.code), o.slot, o.isBlock, o.length);
    }

    /// @inheritdoc IMachine
    function element(Ctx calldata c, uint256 k, uint64 j) external view returns (uint64 steps, bytes32 initLeaf) {
        T.Dims memory d = T.dims(c);
        T.Op memory o = windowedOp(c, d, k);
        checkElement(o, k, j, 0);
        steps = uint64(T.steps(c, d, o, j, matType(c, o)));
        initLeaf = MachineState.leafOf(MachineState.MicroState(uint32(k), j, 0, T.initRegs(d, o), ""));
    }

    /// @inheritdoc IMachine
    /// @dev frame and reads are not named here: the whole calldata is forwarded to MachineStepsA/B.
    function step(Ctx calldata c, bytes32 /* frame */, MachineState.MicroState calldata pre, bytes[] calldata /* reads */)
        external
        view
        returns (bytes32 postLeaf)
    {
        T.Dims memory d = T.dims(c);
        T.Op memory o = windowedOp(c, d, pre.op);
        checkElement(o, pre.op, pre.elem, pre.step);
        uint256 m = matEntry(c, o);
        uint32 wtype = m == 0 ? 0 : uint32(m) - 1;
        // INVARIANT: the final state has no next step.
        if (pre.step >= T.steps(c, d, o, pre.elem, wtype)) revert NoSuchStep(pre.op, pre.elem, pre.step);
        uint8 code = o.code;
        bool a = code == T.MATMUL || code == T.RMS_SCALE || code == T.NORM || code == T.QUANT32 || code == T.QUANT256
            || code == T.BIAS || code == T.RES || code == T.SILU || code == T.EMBED || code == T.HEAD_RMS || code == T.HEAD_NORM;
        // MachineStepsA/B.step has this function's signature: the arguments go on as they came
        // (no copy re-encoded and decoded again), with the dims, op, weight type and tensor leaf
        // tag appended.
        (bool ok, bytes memory ret) =
            (a ? address(stepsA) : address(stepsB)).staticcall(abi.encodePacked(msg.data, abi.encode(d, o, wtype, m)));
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 32), mload(ret))
            }
        }
        return abi.decode(ret, (bytes32));
    }

    /// @inheritdoc IMachine
    function oneStep(Ctx calldata c, uint256 k, bytes32 pre, bytes32 post, bytes calldata proof) external view returns (bool) {
        (T.Op memory o,) = T.opAt(c, k);
        // INVARIANT: only LOAD, STORE and TOKEN are decided without elements.
        if (!isOneStep(o.code)) revert WrongStepKind();
        if (o.code == T.TOKEN) return post == MachineState.headLeaf(c.pos, c.config.nLayer, R.promptToken(c, uint256(c.pos) + 1, proof, 0), 0);
        if (o.code == T.LOAD) return post == loadFrame(c, o, pre, proof);
        if (T.isHead(c)) return headStore(c, pre, post, proof);
        (bytes32[3] memory roots, bytes32[] memory p0, bytes32[] memory p1, bytes32[] memory p2) =
            abi.decode(proof, (bytes32[3], bytes32[], bytes32[], bytes32[]));
        // INVARIANT: the leaf's roots are the pre-frame's X3, KR and V (qwen2: VB) slots.
        if (!MachineState.isSlot(pre, T.S_X3, roots[0], p0)) revert BadReadProof(0);
        if (!MachineState.isSlot(pre, T.S_KR, roots[1], p1)) revert BadReadProof(1);
        if (!MachineState.isSlot(pre, c.config.arch == 2 ? T.S_VB : T.S_V, roots[2], p2)) revert BadReadProof(2);
        return post == MachineState.layerLeaf(c.pos, c.layer, roots[0], roots[1], roots[2]);
    }

    /// @inheritdoc IMachine
    /// @dev `opening` is a WordsOpening's (chunkIndex, chunk, chunkPath) as MachineState.Opening for
    ///      a word slot, the block's path (bytes32[]) for a block slot. A `last` that is not the
    ///      final state of an element of op k, or a block leaf not under the root, gives false.
    function result(Ctx calldata c, uint256 k, bytes32 slotRoot, MachineState.MicroState calldata last, bytes calldata proof)
        external
        view
        returns (bool)
    {
        T.Dims memory d = T.dims(c);
        T.Op memory o = windowedOp(c, d, k);
        if (o.code == 0 || isOneStep(o.code) || last.op != k || last.elem >= o.length) return false;
        if (last.step != T.steps(c, d, o, last.elem, matType(c, o))) return false;
        if (o.isBlock) {
            bytes32[] memory path = abi.decode(proof, (bytes32[]));
            bytes32 leaf = MerkleProof.leafHash(abi.encode(last.r[0], last.data));
            return path.length == R.depthOf(o.length) && MerkleProof.verify(slotRoot, leaf, last.elem, path);
        }
        (bool ok, uint32 w) = MachineState.word(slotRoot, o.length, last.elem, abi.decode(proof, (MachineState.Opening)));
        // INVARIANT: the opening proves slot element j.
        if (!ok) revert BadReadProof(0);
        return w == last.r[0];
    }

    // ------------------------------------------------------------------ one-step ops

    function isOneStep(uint8 code) private pure returns (bool) {
        return code == T.LOAD || code == T.STORE || code == T.TOKEN;
    }

    /// @dev The frame LOAD makes: only its slot set (TOK = [token at p], X = the pre leaf's residual).
    function loadFrame(Ctx calldata c, T.Op memory o, bytes32 pre, bytes calldata proof) private view returns (bytes32) {
        if (o.slot == T.S_X) {
            (bytes32 x, bytes32 k, bytes32 v) = abi.decode(proof, (bytes32, bytes32, bytes32));
            // INVARIANT: X is the residual of the agreed pre leaf (p, l − 1) (head: l = nLayer).
            if (pre != MachineState.layerLeaf(c.pos, c.layer - 1, x, k, v)) revert BadReadProof(0);
            return frameWithOne(T.S_X, x);
        }
        uint32 token;
        if (c.pos < c.nPrompt) {
            token = R.promptToken(c, c.pos, proof, 0);
        } else {
            R.HeadOpening memory h = abi.decode(proof, (R.HeadOpening));
            // INVARIANT: past the prompt the token is the agreed pre leaf's (head p − 1) nextToken.
            if (pre != MachineState.headLeaf(c.pos - 1, c.config.nLayer, h.token, h.logitsRoot)) revert BadReadProof(0);
            token = h.token;
        }
        return frameWithOne(T.S_TOK, MerkleProof.leafHash(abi.encodePacked(MachineState.le32(token))));
    }

    function headStore(Ctx calldata c, bytes32 pre, bytes32 post, bytes calldata proof) private view returns (bool) {
        HeadStoreProof memory h = abi.decode(proof, (HeadStoreProof));
        // INVARIANT: NEXT and L are the pre-frame's.
        bytes32 nextRoot = MerkleProof.leafHash(abi.encodePacked(MachineState.le32(h.next)));
        if (!MachineState.isSlot(pre, T.S_NEXT, nextRoot, h.nextPath)) revert BadReadProof(0);
        if (!MachineState.isSlot(pre, T.S_L, h.logitsRoot, h.logitsPath)) revert BadReadProof(1);
        if (c.pos >= c.nPrompt) {
            // the stop rule: the token consumed at p must not end the answer
            uint32 t = R.headToken(c, c.pos - 1, h.prev, 2);
            uint32[] calldata eog = c.config.eogTokens;
            for (uint256 i; i < eog.length; ++i) if (eog[i] == t) return false;
        }
        return post == MachineState.headLeaf(c.pos, c.config.nLayer, h.next, h.logitsRoot);
    }

    /// @dev A frame whose only non-ZERO slot is `slot` = `root`.
    function frameWithOne(uint256 slot, bytes32 root) private view returns (bytes32 h) {
        bytes32 z;
        h = root;
        for (uint256 i; i < MachineState.FRAME_DEPTH; ++i) {
            h = (slot >> i) & 1 == 0 ? MerkleProof.nodeHash(h, z) : MerkleProof.nodeHash(z, h);
            z = MerkleProof.nodeHash(z, z);
        }
    }

    // ------------------------------------------------------------------ helpers

    /// @dev Op k, with `d.nu` set to what its programs use: for the attention ops (SCORE, MAX, EXPS,
    ///      ZINV, ATT) of a sliding-window model, n_u = min(p + 1, W) (the registry is read only for
    ///      those: every other op is the same with or without a window).
    function windowedOp(Ctx calldata c, T.Dims memory d, uint256 k) private view returns (T.Op memory o) {
        (o,) = T.opAt(c, d, k);
        uint8 code = o.code;
        if (d.nu > 1 && (code == T.SCORE || code == T.MAX || code == T.EXPS || code == T.ZINV || code == T.ATT)) {
            uint256 w = registry.windowOf(c.modelRoot);
            if (w != 0 && w < d.nu) {
                d.nu = w;
                (o,) = T.opAt(c, d, k);
            }
        }
    }

    function checkElement(T.Op memory o, uint256 k, uint64 j, uint64 s) private pure {
        // INVARIANT: only ops with element programs have elements, 0 .. length − 1.
        if (o.code == 0 || isOneStep(o.code) || j >= o.length) revert NoSuchStep(k, j, s);
    }

    function le32(uint32 x) private pure returns (bytes4) {
        return MachineState.le32(x);
    }

    function le64(uint64 x) private pure returns (bytes8) {
        return R.le64(x);
    }
}

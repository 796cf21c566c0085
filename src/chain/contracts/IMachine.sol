// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ModelRegistry} from "./ModelRegistry.sol";
import {MachineState} from "./lib/MachineState.sol";

/// @title IMachine: the dispute machine as the game sees it
/// @notice The Solidity twin of src/dispute/machine/ (docs/MACHINE.md): the op tables of a layer
///         or head transition, each element's program, and the execution of one micro-step with
///         its reads opened against agreed roots. Stateless: the game passes the context, whose
///         config and sampling fields it has checked against the registry and the signed request.
interface IMachine {
    /// @notice Sampling parameters as the client signs them (docs/MACHINE.md "Sampling params"):
    ///         binary32 bits for the floats. `paramsHash` of a request = sha256(abi.encode(Sampling)).
    struct Sampling {
        uint32 temperatureBits;
        uint32 topK;
        uint32 topPBits;
        uint32 minPBits;
        uint32 repeatPenaltyBits;
        uint32 repeatLastN;
        uint32 maxTokens;
        bytes32 stopHash; // sha256 of the canonical JSON list of stop strings (checked off chain)
    }

    /// @notice What a transition's programs depend on.
    struct Ctx {
        bytes32 modelRoot;
        bytes32 traceRoot;
        bytes32 promptRoot;
        uint32 nPrompt;
        uint32 pos;
        uint32 layer; // config.nLayer: the head transition
        uint64 seed;
        ModelRegistry.ModelConfigV3 config;
        Sampling sampling;
    }

    /// @notice Records the ggml type of tensor `name` of `modelRoot`, proven by its tensor leaf
    ///         (docs/TRACE.md "Model root") at `tensorIndex` under the model root. A matmul's type
    ///         fixes its element programs (step counts, activation slot), so `element` and `step`
    ///         of a matmul op revert `UnknownWeightType` until its tensor is proven here; anyone
    ///         may prove it (the provider does before `expandElement`), and a proven type never
    ///         changes. The leaf's hash is recorded with the type: a matmul's weight reads are
    ///         checked against that record and carry no path to the model root. Reverts
    ///         `BadTensorProof` when the leaf is not under the root.
    function proveWeightType(
        bytes32 modelRoot,
        bytes calldata name,
        uint32 tensorIndex,
        uint32 ggmlType,
        uint64 rows,
        uint64 cols,
        bytes32 rowRoot,
        bytes32[] calldata tensorPath
    ) external;

    /// @notice The proven ggml type of tensor `name` of `modelRoot` (known = false if not proven).
    function weightType(bytes32 modelRoot, bytes calldata name) external view returns (bool known, uint32 ggmlType);

    /// @notice Number of ops of the transition: op-level leaves are 0 (the pre trace leaf) .. n
    ///         (the post trace leaf; op n is STORE, or TOKEN for a teacher-forced head).
    function opCount(Ctx calldata c) external view returns (uint256 n);

    /// @notice Op k (1 .. n): whether it is a one-step op (LOAD, STORE, TOKEN), the slot it writes
    ///         (255 for STORE and TOKEN), whether that slot is a block vector, and its element count
    ///         (LOAD: its slot's length; STORE, TOKEN and an empty block vector: 0). Reverts
    ///         `NoSuchStep(k, 0, 0)` for k outside 1 .. n.
    function op(Ctx calldata c, uint256 k) external view returns (bool oneStep, uint8 slot, bool isBlock, uint64 length);

    /// @notice Element j of op k: its number of micro-steps and the leaf of its initial state.
    function element(Ctx calldata c, uint256 k, uint64 j) external view returns (uint64 steps, bytes32 initLeaf);

    /// @notice Executes micro-step `pre.step + 1` of element `pre.elem` of op `pre.op` from the
    ///         agreed `pre` state, the op's agreed pre-frame `frame` and the openings `reads` (one per
    ///         read of the step, in order); returns the leaf of the post-state. Reverts
    ///         `BadReadProof(i)` when opening i does not prove its read.
    function step(Ctx calldata c, bytes32 frame, MachineState.MicroState calldata pre, bytes[] calldata reads)
        external
        view
        returns (bytes32 postLeaf);

    /// @notice The one-step ops: true when `post` is what op k (LOAD, STORE or TOKEN) makes of
    ///         `pre` given `proof` (docs/MACHINE.md); reverts `BadReadProof` on an opening that
    ///         does not prove what it claims.
    function oneStep(Ctx calldata c, uint256 k, bytes32 pre, bytes32 post, bytes calldata proof) external view returns (bool);

    /// @notice The result of an element's final state (word or block leaf), opened at element j
    ///         of the op's slot `slotRoot` by `opening`: true when they agree. Reverts
    ///         `BadReadProof(0)` when the opening does not prove slot element j.
    function result(Ctx calldata c, uint256 k, bytes32 slotRoot, MachineState.MicroState calldata last, bytes calldata opening)
        external
        view
        returns (bool);
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {
    BadConfigProof,
    BadTrainingRecord,
    ModelAlreadyRegistered,
    NoTrainingRecord,
    UnknownArith,
    UnknownDataset,
    UnknownModel,
    UnsupportedMachineShape
} from "./Errors.sol";
import {DatasetRegistry} from "./DatasetRegistry.sol";
import {MachineState} from "./lib/MachineState.sol";
import {MerkleProof} from "./lib/MerkleProof.sol";

// The arithmetics a model may be registered under (docs/ARITHMETIC.md), as bytes32 of the version
// string: the dispute machine judges a model's jobs under its registered one (docs/CHAIN.md
// "What the judge checks"); v2 rounds the cached K and V values attention reads to binary16.
bytes32 constant ARITH_V1 = "tessera-arith/1";
bytes32 constant ARITH_V2 = "tessera-arith/2";
// The low 4 bytes of a stored spec: the window W beside the arithmetic (both arithmetics are
// 15-byte strings, left-aligned, so their low 17 bytes are zero).
bytes32 constant SPEC_WINDOW = bytes32(uint256(type(uint32).max));

/// @title ModelRegistry
/// @notice Immutable registry of models by content root (docs/TRACE.md "Model root"). Anyone may
/// register; an entry never changes, so a receipt naming a model root always means the same bytes.
/// What it records about a model is checked, not believed: the config is opened from the model
/// root (its config leaf, leaf 0), so a registrant cannot lie about the layer count or any field.
/// A model may be registered with its training record (registerTrained): the datasets it was
/// trained on (registered in `datasets`, with a weight each), the training manifest's hash and the
/// run root. The record is written with the entry and never changes; nothing on chain can check
/// that the weights came from that run (an auditor replays it: `tessera train verify`), so the
/// record is the registrant's claim, first come like the entry (docs/CHAIN.md "Data provenance").
contract ModelRegistry {
    /// @notice The model config the dispute game needs (docs/MACHINE.md "Config leaf, version 3"):
    ///         arch 1 = llama, 2 = qwen2, 3 = qwen3; ropeBaseBits and rmsEpsBits are binary32 bits;
    ///         eogTokens are the tokenizer's end-of-generation ids, sorted, distinct.
    struct ModelConfigV3 {
        uint8 arch;
        uint32 nLayer;
        uint32 dim;
        uint32 nHead;
        uint32 nKvHead;
        uint32 headDim;
        uint32 ffDim;
        uint32 vocab;
        uint32 contextLength;
        uint32 ropeBaseBits;
        uint32 rmsEpsBits;
        bool tiedEmbeddings;
        uint32[] eogTokens;
    }

    /// @notice What a model root commits to, beyond its weights (what `get` returns).
    struct Model {
        bytes32 configHash; // sha256(abi.encode(ModelConfigV3))
        bytes32 tokenizerHash; // sha256 of the canonical tokenizer JSON
        bytes32 arithVersion; // ARITH_V1 or ARITH_V2: the arithmetic its jobs are computed and judged under
        uint32 nLayer;
        address registrant;
        uint64 registeredAt;
    }

    /// @notice What a trained model was trained on: its datasets (DatasetRegistry roots) with the
    ///         share of the model's data payouts each gets (basis points, summing to 10,000), the
    ///         hash of the training manifest (config, seeds, schedule: src/train) and the run root.
    struct TrainingRecord {
        bytes32 manifestHash;
        bytes32 runRoot;
        bytes32[] datasetRoots;
        uint16[] weightsBps;
    }

    /// @notice Version tag that starts the config leaf data (modelRoot format 3).
    bytes public constant CONFIG_TAG = "tessera-config/3";
    /// @notice Tag of a sliding-window model's config leaf: `CONFIG_TAG_WINDOW || u32 window (LE) ||
    ///         abi.encode(config) || tokenizerHash` (docs/TRACE.md "Model root"), so that a windowed
    ///         root is never the root of the same weights without the window.
    bytes public constant CONFIG_TAG_WINDOW = "tessera-config/3+window";
    /// @notice Most datasets one training record may name.
    uint256 public constant MAX_DATASETS = 16;

    /// @notice The dataset registry training records point into (deployed by this contract).
    DatasetRegistry public immutable datasets;

    /// @dev A stored Model, with the arithmetic and the attention window W (0: full attention) in
    ///      one slot, `spec` = arithVersion | W: an attention step of the dispute machine reads both
    ///      (Machine `windowOf`, then MachineStepsB `arithOf` for DOT8 / ACC), and pays one cold slot.
    struct Entry {
        bytes32 configHash;
        bytes32 tokenizerHash;
        bytes32 spec;
        uint32 nLayer;
        address registrant;
        uint64 registeredAt;
    }

    mapping(bytes32 => Entry) private models;
    mapping(bytes32 => ModelConfigV3) private configs;
    mapping(bytes32 => TrainingRecord) private records;

    /// @notice Emitted once per model root.
    event ModelRegistered(bytes32 indexed modelRoot, bytes32 configHash, bytes32 tokenizerHash, bytes32 arithVersion, uint32 nLayer, address registrant);
    /// @notice Emitted with ModelRegistered when the model comes with a training record.
    event TrainingRecorded(bytes32 indexed modelRoot, bytes32 manifestHash, bytes32 runRoot, bytes32[] datasetRoots, uint16[] weightsBps);

    constructor() {
        datasets = new DatasetRegistry();
    }

    /// @notice Registers `modelRoot` with its config, proven by `configPath`: the path of the
    ///         config leaf `CONFIG_TAG || abi.encode(config) || tokenizerHash` (window 0) or, for a
    ///         sliding-window model, `CONFIG_TAG_WINDOW || le32(window) || abi.encode(config) ||
    ///         tokenizerHash`, at leaf 0 of the model tree, under the arithmetic `arithVersion`
    ///         (ARITH_V1 or ARITH_V2). Reverts ModelAlreadyRegistered, BadConfigProof when the leaf
    ///         is not under `modelRoot` (so a window the root does not commit to, or none where it
    ///         commits to one), UnsupportedMachineShape, or UnknownArith for an arithmetic the
    ///         machine does not judge.
    function register(
        bytes32 modelRoot,
        ModelConfigV3 calldata config,
        bytes32 tokenizerHash,
        bytes32 arithVersion,
        uint32 window,
        bytes32[] calldata configPath
    ) external {
        _register(modelRoot, config, tokenizerHash, arithVersion, window, configPath);
    }

    /// @notice Registers `modelRoot` as `register` does, with its training record. Reverts as
    ///         `register` does; UnknownDataset for a dataset root not in `datasets`;
    ///         BadTrainingRecord for a zero manifest hash or run root, no datasets or more than
    ///         MAX_DATASETS, lists of unequal length, a dataset named twice, a zero weight, or
    ///         weights that do not sum to 10,000.
    function registerTrained(
        bytes32 modelRoot,
        ModelConfigV3 calldata config,
        bytes32 tokenizerHash,
        bytes32 arithVersion,
        uint32 window,
        bytes32[] calldata configPath,
        TrainingRecord calldata rec
    ) external {
        _register(modelRoot, config, tokenizerHash, arithVersion, window, configPath);
        // INVARIANT: a record names registered datasets, each once, weights summing to 10,000.
        if (rec.manifestHash == bytes32(0)) revert BadTrainingRecord("manifestHash");
        if (rec.runRoot == bytes32(0)) revert BadTrainingRecord("runRoot");
        uint256 n = rec.datasetRoots.length;
        if (n == 0 || n > MAX_DATASETS || rec.weightsBps.length != n) revert BadTrainingRecord("datasets");
        uint256 sum;
        for (uint256 i = 0; i < n; i++) {
            bytes32 root = rec.datasetRoots[i];
            if (!datasets.isRegistered(root)) revert UnknownDataset(root);
            for (uint256 j = 0; j < i; j++) {
                if (rec.datasetRoots[j] == root) revert BadTrainingRecord("datasets");
            }
            if (rec.weightsBps[i] == 0) revert BadTrainingRecord("weights");
            sum += rec.weightsBps[i];
        }
        if (sum != 10_000) revert BadTrainingRecord("weights");
        records[modelRoot] = rec;
        emit TrainingRecorded(modelRoot, rec.manifestHash, rec.runRoot, rec.datasetRoots, rec.weightsBps);
    }

    function _register(
        bytes32 modelRoot,
        ModelConfigV3 calldata config,
        bytes32 tokenizerHash,
        bytes32 arithVersion,
        uint32 window,
        bytes32[] calldata configPath
    ) internal {
        // INVARIANT: entries are immutable once written.
        if (models[modelRoot].registrant != address(0)) revert ModelAlreadyRegistered(modelRoot);
        bytes memory encoded = abi.encode(config);
        bytes32 leaf = MerkleProof.leafHash(
            window == 0
                ? abi.encodePacked(CONFIG_TAG, encoded, tokenizerHash)
                : abi.encodePacked(CONFIG_TAG_WINDOW, MachineState.le32(window), encoded, tokenizerHash)
        );
        // INVARIANT: every stored field is the model root's own config leaf (leaf 0).
        if (!MerkleProof.verify(modelRoot, leaf, 0, configPath)) revert BadConfigProof();
        // INVARIANT: only models the dispute machine can decide are registered: a claim on any other
        // could not be defended (or challenged) on chain (docs/MACHINE.md "The layer transition").
        uint256 kvDim = uint256(config.nKvHead) * config.headDim;
        if (
            (config.arch == 0 || config.arch > 3) || config.nKvHead == 0 || config.headDim == 0 || kvDim == 0
                || config.dim % 8 != 0 || config.headDim % 8 != 0 || config.ffDim % 8 != 0 || kvDim % 8 != 0
                || config.nHead % config.nKvHead != 0
        ) revert UnsupportedMachineShape();
        // INVARIANT: a model's jobs are judged under its registered arithmetic, so it is one the
        // machine implements: an unknown one is never judged as v1 (docs/CHAIN.md).
        if (arithVersion != ARITH_V1 && arithVersion != ARITH_V2) revert UnknownArith(arithVersion);
        bytes32 configHash = sha256(encoded);
        // the arithmetic's low 4 bytes are zero (ARITH_V1 or ARITH_V2, checked above): W fits them
        models[modelRoot] = Entry(configHash, tokenizerHash, arithVersion | bytes32(uint256(window)), config.nLayer, msg.sender, uint64(block.timestamp));
        configs[modelRoot] = config;
        emit ModelRegistered(modelRoot, configHash, tokenizerHash, arithVersion, config.nLayer, msg.sender);
    }

    /// @notice The entry for `modelRoot`; reverts with UnknownModel if none.
    function get(bytes32 modelRoot) external view returns (Model memory) {
        Entry storage e = models[modelRoot];
        // INVARIANT: only registered roots have a non-zero registrant.
        if (e.registrant == address(0)) revert UnknownModel(modelRoot);
        return Model(e.configHash, e.tokenizerHash, e.spec & ~SPEC_WINDOW, e.nLayer, e.registrant, e.registeredAt);
    }

    /// @notice The proven config of `modelRoot`; reverts with UnknownModel if none.
    function configOf(bytes32 modelRoot) external view returns (ModelConfigV3 memory) {
        // INVARIANT: only registered roots have a config.
        if (models[modelRoot].registrant == address(0)) revert UnknownModel(modelRoot);
        return configs[modelRoot];
    }

    /// @notice The arithmetic `modelRoot` is registered under (ARITH_V1 or ARITH_V2; zero if unknown):
    ///         the dispute machine reads it for the steps whose arithmetic differs (the slot that
    ///         also holds the window, so after `windowOf` it is a warm read).
    function arithOf(bytes32 modelRoot) external view returns (bytes32) {
        return models[modelRoot].spec & ~SPEC_WINDOW;
    }

    /// @notice The attention window W `modelRoot`'s config leaf commits to (0: full attention, or
    ///         unknown): the dispute machine's attention ops read positions max(0, p − W + 1) .. p
    ///         (docs/MACHINE.md "Sliding window").
    function windowOf(bytes32 modelRoot) external view returns (uint32) {
        return uint32(uint256(models[modelRoot].spec));
    }

    /// @notice True when `modelRoot` is registered.
    function isRegistered(bytes32 modelRoot) external view returns (bool) {
        return models[modelRoot].registrant != address(0);
    }

    /// @notice Number of layers of a registered model (0 if unknown): the dispute game needs it to map trace leaves.
    function nLayerOf(bytes32 modelRoot) external view returns (uint32) {
        return models[modelRoot].nLayer;
    }

    /// @notice The training record of `modelRoot`; reverts UnknownModel, or NoTrainingRecord for a
    ///         model registered without one.
    function recordOf(bytes32 modelRoot) external view returns (TrainingRecord memory) {
        if (models[modelRoot].registrant == address(0)) revert UnknownModel(modelRoot);
        if (records[modelRoot].datasetRoots.length == 0) revert NoTrainingRecord(modelRoot);
        return records[modelRoot];
    }

    /// @notice Dataset `i` of `modelRoot`'s training record and its weight (basis points); reverts
    ///         NoTrainingRecord for a model without one (or an unregistered root), BadTrainingRecord
    ///         for an index past its datasets.
    function datasetOf(bytes32 modelRoot, uint256 i) external view returns (bytes32 root, uint16 weightBps) {
        TrainingRecord storage r = records[modelRoot];
        if (r.datasetRoots.length == 0) revert NoTrainingRecord(modelRoot);
        if (i >= r.datasetRoots.length) revert BadTrainingRecord("index");
        return (r.datasetRoots[i], r.weightsBps[i]);
    }

    /// @notice What a claim needs of a model, in one call: its layer count (0 if unknown) and
    ///         whether it has a training record (its jobs then pay Settlement's data share).
    function claimInfo(bytes32 modelRoot) external view returns (uint32 nLayer, bool trained) {
        return (models[modelRoot].nLayer, records[modelRoot].datasetRoots.length != 0);
    }
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {BadConfigProof, ModelAlreadyRegistered, UnknownModel, UnsupportedMachineShape} from "./Errors.sol";
import {MerkleProof} from "./lib/MerkleProof.sol";

/// @title ModelRegistry
/// @notice Immutable registry of models by content root (docs/TRACE.md "Model root"). Anyone may
/// register; an entry never changes, so a receipt naming a model root always means the same bytes.
/// What it records about a model is checked, not believed: the config is opened from the model
/// root (its config leaf, leaf 0), so a registrant cannot lie about the layer count or any field.
contract ModelRegistry {
    /// @notice The model config the dispute game needs (docs/MACHINE.md "Config leaf, version 3"):
    ///         arch 1 = llama, 2 = qwen2; ropeBaseBits and rmsEpsBits are binary32 bits;
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

    /// @notice What a model root commits to, beyond its weights.
    struct Model {
        bytes32 configHash; // sha256(abi.encode(ModelConfigV3))
        bytes32 tokenizerHash; // sha256 of the canonical tokenizer JSON
        bytes32 arithVersion; // e.g. bytes32("tessera-arith/1")
        uint32 nLayer;
        address registrant;
        uint64 registeredAt;
    }

    /// @notice Version tag that starts the config leaf data (modelRoot format 3).
    bytes public constant CONFIG_TAG = "tessera-config/3";

    mapping(bytes32 => Model) private models;
    mapping(bytes32 => ModelConfigV3) private configs;

    /// @notice Emitted once per model root.
    event ModelRegistered(bytes32 indexed modelRoot, bytes32 configHash, bytes32 tokenizerHash, bytes32 arithVersion, uint32 nLayer, address registrant);

    /// @notice Registers `modelRoot` with its config, proven by `configPath`: the path of the
    ///         config leaf `CONFIG_TAG || abi.encode(config) || tokenizerHash` at leaf 0 of the
    ///         model tree. Reverts ModelAlreadyRegistered, or BadConfigProof when the leaf is not
    ///         under `modelRoot`.
    function register(
        bytes32 modelRoot,
        ModelConfigV3 calldata config,
        bytes32 tokenizerHash,
        bytes32 arithVersion,
        bytes32[] calldata configPath
    ) external {
        // INVARIANT: entries are immutable once written.
        if (models[modelRoot].registrant != address(0)) revert ModelAlreadyRegistered(modelRoot);
        bytes memory encoded = abi.encode(config);
        bytes32 leaf = MerkleProof.leafHash(abi.encodePacked(CONFIG_TAG, encoded, tokenizerHash));
        // INVARIANT: every stored field is the model root's own config leaf (leaf 0).
        if (!MerkleProof.verify(modelRoot, leaf, 0, configPath)) revert BadConfigProof();
        // INVARIANT: only models the dispute machine can decide are registered: a claim on any other
        // could not be defended (or challenged) on chain (docs/MACHINE.md "The layer transition").
        uint256 kvDim = uint256(config.nKvHead) * config.headDim;
        if (
            (config.arch != 1 && config.arch != 2) || config.nKvHead == 0 || config.headDim == 0 || kvDim == 0
                || config.dim % 8 != 0 || config.headDim % 8 != 0 || config.ffDim % 8 != 0 || kvDim % 8 != 0
                || config.nHead % config.nKvHead != 0
        ) revert UnsupportedMachineShape();
        bytes32 configHash = sha256(encoded);
        models[modelRoot] = Model(configHash, tokenizerHash, arithVersion, config.nLayer, msg.sender, uint64(block.timestamp));
        configs[modelRoot] = config;
        emit ModelRegistered(modelRoot, configHash, tokenizerHash, arithVersion, config.nLayer, msg.sender);
    }

    /// @notice The entry for `modelRoot`; reverts with UnknownModel if none.
    function get(bytes32 modelRoot) external view returns (Model memory m) {
        m = models[modelRoot];
        // INVARIANT: only registered roots have a non-zero registrant.
        if (m.registrant == address(0)) revert UnknownModel(modelRoot);
    }

    /// @notice The proven config of `modelRoot`; reverts with UnknownModel if none.
    function configOf(bytes32 modelRoot) external view returns (ModelConfigV3 memory) {
        // INVARIANT: only registered roots have a config.
        if (models[modelRoot].registrant == address(0)) revert UnknownModel(modelRoot);
        return configs[modelRoot];
    }

    /// @notice True when `modelRoot` is registered.
    function isRegistered(bytes32 modelRoot) external view returns (bool) {
        return models[modelRoot].registrant != address(0);
    }

    /// @notice Number of layers of a registered model (0 if unknown): the dispute game needs it to map trace leaves.
    function nLayerOf(bytes32 modelRoot) external view returns (uint32) {
        return models[modelRoot].nLayer;
    }
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ModelAlreadyRegistered, UnknownModel} from "./Errors.sol";

/// @title ModelRegistry
/// @notice Immutable registry of models by content root (docs/TRACE.md "Model root"). Anyone may
/// register; an entry never changes, so a receipt naming a model root always means the same bytes.
contract ModelRegistry {
    /// @notice What a model root commits to, beyond its weights.
    struct Model {
        bytes32 configHash;
        bytes32 tokenizerHash;
        bytes32 arithVersion; // e.g. bytes32("tessera-arith/1")
        uint32 nLayer;
        address registrant;
        uint64 registeredAt;
    }

    mapping(bytes32 => Model) private models;

    /// @notice Emitted once per model root.
    event ModelRegistered(bytes32 indexed modelRoot, bytes32 configHash, bytes32 tokenizerHash, bytes32 arithVersion, uint32 nLayer, address registrant);

    /// @notice Registers `modelRoot`; reverts if it is already registered.
    function register(bytes32 modelRoot, bytes32 configHash, bytes32 tokenizerHash, bytes32 arithVersion, uint32 nLayer) external {
        // INVARIANT: entries are immutable once written.
        if (models[modelRoot].registrant != address(0)) revert ModelAlreadyRegistered(modelRoot);
        models[modelRoot] = Model(configHash, tokenizerHash, arithVersion, nLayer, msg.sender, uint64(block.timestamp));
        emit ModelRegistered(modelRoot, configHash, tokenizerHash, arithVersion, nLayer, msg.sender);
    }

    /// @notice The entry for `modelRoot`; reverts with UnknownModel if none.
    function get(bytes32 modelRoot) external view returns (Model memory m) {
        m = models[modelRoot];
        // INVARIANT: only registered roots have a non-zero registrant.
        if (m.registrant == address(0)) revert UnknownModel(modelRoot);
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

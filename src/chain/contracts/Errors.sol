// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

// Every custom error of Tessera's contracts, declared once (the TS client decodes them by name).

// ModelRegistry
error ModelAlreadyRegistered(bytes32 modelRoot);
error UnknownModel(bytes32 modelRoot);

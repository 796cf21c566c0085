// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

interface ISettlementData {
    function withdrawData(bytes32 modelRoot, uint256 datasetIndex) external;
}

/// @title ReentrantContributor
/// @notice Test actor: a dataset contributor whose receive() withdraws the same data share again
///         while being paid (src/chain/datasets.test.ts).
contract ReentrantContributor {
    ISettlementData public immutable target;
    bytes32 internal model;
    uint256 internal index;

    constructor(ISettlementData target_) {
        target = target_;
    }

    /// @notice Withdraws its part of dataset `i` of `modelRoot`; receive() re-enters once with the same.
    function attack(bytes32 modelRoot, uint256 i) external {
        model = modelRoot;
        index = i;
        target.withdrawData(modelRoot, i);
    }

    receive() external payable {
        target.withdrawData(model, index);
    }
}

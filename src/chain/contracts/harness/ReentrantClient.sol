// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

interface ISettlementEscrow {
    function deposit() external payable;
    function withdrawEscrow(uint256 amount) external;
}

/// @title ReentrantClient
/// @notice Test actor: a client whose receive() tries to withdraw again while being paid.
contract ReentrantClient {
    ISettlementEscrow public immutable target;
    uint256 public reentries;

    constructor(ISettlementEscrow target_) {
        target = target_;
    }

    /// @notice Deposits msg.value into the target's escrow.
    function fund() external payable {
        target.deposit{value: msg.value}();
    }

    /// @notice Withdraws `amount`; receive() re-enters once.
    function attack(uint256 amount) external {
        target.withdrawEscrow(amount);
    }

    receive() external payable {
        reentries++;
        target.withdrawEscrow(msg.value);
    }
}

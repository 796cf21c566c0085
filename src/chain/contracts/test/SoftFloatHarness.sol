// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {SoftFloat} from "../lib/SoftFloat.sol";

/// @title SoftFloatHarness
/// @notice Test-only batch entry points over SoftFloat for differential fuzzing with eth_call:
///         each takes arrays of operands and returns the result bits and the gas each internal
///         call used (a gasleft() delta, so the cost a contract linking SoftFloat pays).
contract SoftFloatHarness {
    /// @notice op: 0 add, 1 sub, 2 mul, 3 div, 4 sqrt (b ignored).
    function binary(uint8 op, uint32[] calldata a, uint32[] calldata b)
        external
        view
        returns (uint32[] memory r, uint256[] memory g)
    {
        r = new uint32[](a.length);
        g = new uint256[](a.length);
        for (uint256 i; i < a.length; ++i) {
            uint32 x = a[i];
            uint32 y = op == 4 ? 0 : b[i];
            uint32 z;
            uint256 g0;
            if (op == 0) {
                g0 = gasleft();
                z = SoftFloat.add(x, y);
                g0 -= gasleft();
            } else if (op == 1) {
                g0 = gasleft();
                z = SoftFloat.sub(x, y);
                g0 -= gasleft();
            } else if (op == 2) {
                g0 = gasleft();
                z = SoftFloat.mul(x, y);
                g0 -= gasleft();
            } else if (op == 3) {
                g0 = gasleft();
                z = SoftFloat.div(x, y);
                g0 -= gasleft();
            } else {
                g0 = gasleft();
                z = SoftFloat.sqrt(x);
                g0 -= gasleft();
            }
            r[i] = z;
            g[i] = g0;
        }
    }

    /// @notice i2f over a batch of int32.
    function i2f(int32[] calldata n) external view returns (uint32[] memory r, uint256[] memory g) {
        r = new uint32[](n.length);
        g = new uint256[](n.length);
        for (uint256 i; i < n.length; ++i) {
            int32 x = n[i];
            uint256 g0 = gasleft();
            uint32 z = SoftFloat.i2f(x);
            g[i] = g0 - gasleft();
            r[i] = z;
        }
    }

    /// @notice h2f over a batch of binary16 bit patterns.
    function h2f(uint16[] calldata h) external view returns (uint32[] memory r, uint256[] memory g) {
        r = new uint32[](h.length);
        g = new uint256[](h.length);
        for (uint256 i; i < h.length; ++i) {
            uint16 x = h[i];
            uint256 g0 = gasleft();
            uint32 z = SoftFloat.h2f(x);
            g[i] = g0 - gasleft();
            r[i] = z;
        }
    }
}

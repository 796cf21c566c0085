// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {SoftFloat} from "./SoftFloat.sol";

/// @title Prng: RAND(seed, step) of docs/ARITHMETIC.md
/// @notice The counter-based sampling PRNG: SplitMix64's output function applied to
///         `seed + (step + 1) * 0x9E3779B97F4A7C15` over uint64 with wrap-around, and the uniform
///         binary32 `u = i2f(z >> 40) ⊗ 2^-24` in [0, 1). Draw `step` depends only on (seed, step),
///         so the judge checks one draw without replaying the others.
library Prng {
    /// @notice The 64-bit mixed state z of draw `step` under `seed`.
    function splitmix64(uint64 seed, uint64 step) internal pure returns (uint64 z) {
        // unchecked: the spec's arithmetic is modulo 2^64 by definition.
        unchecked {
            z = seed + (step + 1) * 0x9E3779B97F4A7C15;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
            z = z ^ (z >> 31);
        }
    }

    /// @notice RAND(seed, step): the state z and the binary32 bits of u.
    /// @dev `i2f(z >> 40) ⊗ 2^-24` is exact (24 bits, and 2^-24 times a nonzero 24-bit integer is
    ///      a normal binary32), so it is packed directly as (z >> 40) * 2^-24.
    function rand(uint64 seed, uint64 step) internal pure returns (uint64 z, uint32 u) {
        z = splitmix64(seed, step);
        uint256 m = z >> 40;
        u = m == 0 ? 0 : SoftFloat.pack(0, -24, m);
    }
}

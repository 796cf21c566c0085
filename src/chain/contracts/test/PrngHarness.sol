// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Prng} from "../lib/Prng.sol";

/// @title PrngHarness
/// @notice Test-only batch entry point over Prng.rand for differential fuzzing with eth_call.
contract PrngHarness {
    /// @notice For every case i: RAND(seeds[i], steps[i]) as (z, u bits) and its gas.
    function rand(uint64[] calldata seeds, uint64[] calldata steps)
        external
        view
        returns (uint64[] memory z, uint32[] memory u, uint256[] memory g)
    {
        z = new uint64[](seeds.length);
        u = new uint32[](seeds.length);
        g = new uint256[](seeds.length);
        for (uint256 i; i < seeds.length; ++i) {
            uint64 seed = seeds[i];
            uint64 step = steps[i];
            uint256 g0 = gasleft();
            (uint64 zi, uint32 ui) = Prng.rand(seed, step);
            g[i] = g0 - gasleft();
            (z[i], u[i]) = (zi, ui);
        }
    }
}

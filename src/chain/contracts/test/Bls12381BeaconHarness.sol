// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Bls12381} from "../lib/Bls12381.sol";

/// @title Bls12381BeaconHarness
/// @notice Test-only batch entry points over Bls12381, for differential tests against
///         noble-curves (TypeScript) with eth_call (src/chain/beacon.test.ts).
contract Bls12381BeaconHarness {
    /// @notice RFC 9380 hash_to_curve onto G1 of every message under `dst` (128-byte points).
    function hashToG1(bytes[] calldata messages, bytes calldata dst) external view returns (bytes[] memory out) {
        out = new bytes[](messages.length);
        for (uint256 i; i < messages.length; ++i) out[i] = Bls12381.hashToG1(messages[i], dst);
    }

    /// @notice The compressed form of every finite point (x || y, 128 bytes each).
    function compressG1(bytes[] calldata points) external pure returns (bytes[] memory out) {
        out = new bytes[](points.length);
        for (uint256 i; i < points.length; ++i) {
            (uint256 xhi, uint256 xlo, uint256 yhi, uint256 ylo) = words(points[i]);
            out[i] = Bls12381.compressG1(xhi, xlo, yhi, ylo);
        }
    }

    /// @notice Whether every (canonical) pair satisfies the G1 curve equation.
    function isOnCurveG1(bytes[] calldata points) external view returns (bool[] memory out) {
        out = new bool[](points.length);
        for (uint256 i; i < points.length; ++i) {
            (uint256 xhi, uint256 xlo, uint256 yhi, uint256 ylo) = words(points[i]);
            out[i] = Bls12381.isOnCurveG1(xhi, xlo, yhi, ylo);
        }
    }

    function words(bytes calldata p) private pure returns (uint256, uint256, uint256, uint256) {
        return (uint256(bytes32(p[0:32])), uint256(bytes32(p[32:64])), uint256(bytes32(p[64:96])), uint256(bytes32(p[96:128])));
    }
}

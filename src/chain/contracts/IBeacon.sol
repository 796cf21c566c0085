// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

// The beacon's custom errors, declared beside its interface so that a contract coding against
// IBeacon (Audits) decodes them by the same names (docs/CHAIN.md "Beacon").

/// @notice The signature is not the beacon's signature of `round` (wrong round, wrong key, a point
///         off the curve or outside the subgroup, a wrong length), or `round` is 0.
error BadBeaconSignature(uint64 round);
/// @notice Round `round` is only due at `dueAt` (unix seconds), after this block's timestamp.
error BeaconRoundNotYet(uint64 round, uint64 dueAt);
/// @notice The constructor's public key is not a G2 point of the prime-order subgroup, or the
///         period is 0.
error BadBeaconKey();

/// @title IBeacon: randomness nobody involved can bias
/// @notice A drand-compatible BLS12-381 beacon, scheme `bls-unchained-g1-rfc9380` ("quicknet"):
///         round r's signature is a BLS signature on G1 of sha256(uint64 big-endian r) under one
///         G2 public key, verified with the EIP-2537 precompiles. Its randomness is drand's:
///         sha256 of the 48-byte compressed signature. Signatures are passed uncompressed in the
///         EIP-2537 encoding (128 bytes: x then y, each a 64-byte big-endian field element); see
///         src/chain/beacon.ts `toContractSig`. Round r is due at genesisTime + (r - 1) * period.
interface IBeacon {
    /// @notice A round's randomness was verified and stored (`record`).
    event BeaconRecorded(uint64 indexed round, bytes32 randomness);

    /// @notice Unix time (seconds) of round 1.
    function genesisTime() external view returns (uint64);

    /// @notice Seconds between rounds.
    function period() external view returns (uint64);

    /// @notice The latest round due at `time` (drand's formula: (time - genesis) / period + 1);
    ///         0 before genesis.
    function roundAt(uint64 time) external view returns (uint64);

    /// @notice When `round` is due: genesisTime + (round - 1) * period (round >= 1).
    function timeOf(uint64 round) external view returns (uint64);

    /// @notice Whether `sig` (128 bytes, uncompressed EIP-2537 G1) is the beacon's signature of
    ///         `round` and the round is due at this block's timestamp. Never reverts on bad input.
    function verify(uint64 round, bytes calldata sig) external view returns (bool);

    /// @notice drand's randomness of `round`: sha256 of the compressed signature. Reverts
    ///         BeaconRoundNotYet for a round not yet due, BadBeaconSignature for a bad signature.
    function randomness(uint64 round, bytes calldata sig) external view returns (bytes32);

    /// @notice Verifies `round` like `randomness` and stores its randomness for cheap reads by
    ///         anyone (`randomnessOf`); recording a round twice is allowed and changes nothing.
    function record(uint64 round, bytes calldata sig) external returns (bytes32);

    /// @notice The recorded randomness of `round`, or 0 if nobody recorded it yet.
    function randomnessOf(uint64 round) external view returns (bytes32);
}

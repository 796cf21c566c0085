// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {BadBeaconKey, BadBeaconSignature, BeaconRoundNotYet, IBeacon} from "./IBeacon.sol";
import {Bls12381} from "./lib/Bls12381.sol";

/// @title Beacon: one drand chain of scheme `bls-unchained-g1-rfc9380`, verified on chain
/// @notice Deployed with drand quicknet's key in production and with the devnet's own beacon key
///         (src/chain/beacon.ts `createDevBeacon`) in tests; the same code checks both
///         (docs/CHAIN.md "Beacon"). Round r's message is sha256(uint64 big-endian r), hashed to G1
///         with the DST below; its signature sig verifies when e(sig, -G2) * e(H(m), pk) == 1.
///         A BLS signature is unique per key and message, and the pairing precompile admits only
///         canonical points of the prime-order subgroup, so each round has exactly one accepted
///         signature and one randomness: whoever submits it cannot choose another.
contract Beacon is IBeacon {
    /// @notice drand's DST for G1 signatures under RFC 9380 (quicknet and its kin).
    bytes public constant DST = "BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_";

    /// @inheritdoc IBeacon
    uint64 public immutable genesisTime;
    /// @inheritdoc IBeacon
    uint64 public immutable period;

    // The public key (a G2 point, 256 bytes in the EIP-2537 encoding) as eight immutable words:
    // reading them costs no storage access.
    bytes32 private immutable pk0;
    bytes32 private immutable pk1;
    bytes32 private immutable pk2;
    bytes32 private immutable pk3;
    bytes32 private immutable pk4;
    bytes32 private immutable pk5;
    bytes32 private immutable pk6;
    bytes32 private immutable pk7;

    mapping(uint64 round => bytes32) private recorded;

    /// @param publicKey_ the beacon's G2 public key, uncompressed (256 bytes, EIP-2537 encoding)
    /// @param genesisTime_ unix time of round 1 (drand's `genesis_time`)
    /// @param period_ seconds between rounds (drand's `period`)
    constructor(bytes memory publicKey_, uint64 genesisTime_, uint64 period_) {
        // INVARIANT: a key off G2 or outside its subgroup would make every check fail (or worse,
        // pass for forged points); the pairing precompile refuses such a key, and e(G1, pk) *
        // e(-G1, pk) == 1 holds for every valid one. The point at infinity would accept anything.
        if (period_ == 0 || publicKey_.length != 256 || keccak256(publicKey_) == keccak256(new bytes(256))) {
            revert BadBeaconKey();
        }
        if (!Bls12381.pairing2(Bls12381.G1_GEN, publicKey_, Bls12381.NEG_G1, publicKey_)) revert BadBeaconKey();
        genesisTime = genesisTime_;
        period = period_;
        bytes32[8] memory w;
        assembly ("memory-safe") {
            for { let i := 0 } lt(i, 8) { i := add(i, 1) } {
                mstore(add(w, mul(i, 0x20)), mload(add(add(publicKey_, 0x20), mul(i, 0x20))))
            }
        }
        (pk0, pk1, pk2, pk3, pk4, pk5, pk6, pk7) = (w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]);
    }

    /// @notice The public key as the constructor took it (256 bytes, EIP-2537 G2 encoding).
    function publicKey() public view returns (bytes memory) {
        return abi.encodePacked(pk0, pk1, pk2, pk3, pk4, pk5, pk6, pk7);
    }

    /// @inheritdoc IBeacon
    function roundAt(uint64 time) public view returns (uint64) {
        if (time < genesisTime) return 0;
        return (time - genesisTime) / period + 1;
    }

    /// @inheritdoc IBeacon
    /// @dev drand's TimeOfRound: round 0 maps to genesis; a time past uint64 saturates.
    function timeOf(uint64 round) public view returns (uint64) {
        if (round == 0) return genesisTime;
        uint256 t = uint256(genesisTime) + (uint256(round) - 1) * period;
        return t > type(uint64).max ? type(uint64).max : uint64(t);
    }

    /// @inheritdoc IBeacon
    function verify(uint64 round, bytes calldata sig) external view returns (bool) {
        return timeOf(round) <= block.timestamp && isSignature(round, sig);
    }

    /// @inheritdoc IBeacon
    function randomness(uint64 round, bytes calldata sig) public view returns (bytes32) {
        uint64 due = timeOf(round);
        // INVARIANT: nothing about a round is accepted before it is due, even a correct signature
        // (a devnet key holder could sign ahead; drand never publishes early).
        if (due > block.timestamp) revert BeaconRoundNotYet(round, due);
        // INVARIANT: only the beacon's own signature of this very round yields randomness.
        if (!isSignature(round, sig)) revert BadBeaconSignature(round);
        // drand's randomness is sha256 of the signature as it publishes it: 48 bytes, compressed.
        return sha256(Bls12381.compressG1(uint256(bytes32(sig[0:32])), uint256(bytes32(sig[32:64])), uint256(bytes32(sig[64:96])), uint256(bytes32(sig[96:128]))));
    }

    /// @inheritdoc IBeacon
    function record(uint64 round, bytes calldata sig) external returns (bytes32 r) {
        r = randomness(round, sig);
        if (recorded[round] == bytes32(0)) {
            recorded[round] = r;
            emit BeaconRecorded(round, r);
        }
    }

    /// @inheritdoc IBeacon
    function randomnessOf(uint64 round) external view returns (bytes32) {
        return recorded[round];
    }

    /// @notice Whether `sig` is the beacon's signature of `round`, whatever the time. Cheap checks
    ///         first (length, canonical coordinates, not infinity, on the curve), so that a
    ///         malformed point is refused before the pairing precompile would burn its gas; the
    ///         precompile checks subgroup membership.
    function isSignature(uint64 round, bytes calldata sig) public view returns (bool) {
        if (round == 0 || sig.length != 128) return false;
        uint256 xhi = uint256(bytes32(sig[0:32]));
        uint256 xlo = uint256(bytes32(sig[32:64]));
        uint256 yhi = uint256(bytes32(sig[64:96]));
        uint256 ylo = uint256(bytes32(sig[96:128]));
        if (!Bls12381.isFp(xhi, xlo) || !Bls12381.isFp(yhi, ylo)) return false;
        if (xhi | xlo | yhi | ylo == 0) return false;
        if (!Bls12381.isOnCurveG1(xhi, xlo, yhi, ylo)) return false;
        bytes memory h = Bls12381.hashToG1(abi.encodePacked(sha256(abi.encodePacked(round))), DST);
        return Bls12381.pairing2(sig, Bls12381.NEG_G2, h, publicKey());
    }
}

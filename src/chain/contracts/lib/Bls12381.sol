// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Bls12381: BLS signatures on G1 with the EIP-2537 precompiles
/// @notice What a drand `bls-unchained-g1-rfc9380` beacon needs on chain: RFC 9380 hash-to-curve
///         onto G1 (expand_message_xmd with SHA-256, two field elements, map, add), checks of an
///         uncompressed G1 point, its ZCash compressed form, and the two-pair pairing check.
///         Points use the EIP-2537 encoding: each Fp element is 64 bytes big-endian (16 zero bytes,
///         then 48), a G1 point is x || y (128 bytes), a G2 point x.c0 || x.c1 || y.c0 || y.c1
///         (256 bytes). Field elements live here as two words (hi, lo) of that 64-byte encoding.
library Bls12381 {
    // Precompiles: MODEXP (EIP-198) reduces mod p, SHA-256 via `sha256`, the rest EIP-2537 (Prague).
    uint256 private constant MODEXP = 0x05;
    uint256 private constant G1ADD = 0x0b;
    uint256 private constant PAIRING = 0x0f;
    uint256 private constant MAP_FP_TO_G1 = 0x10;

    /// @notice The base field's modulus p, as the two words of its 64-byte encoding.
    uint256 internal constant P_HI = 0x1a0111ea397fe69a4b1ba7b6434bacd7;
    uint256 internal constant P_LO = 0x64774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab;
    // (p - 1) / 2: a y above it sets the sign flag of the compressed form (ZCash serialization).
    uint256 private constant HALF_HI = 0x0d0088f51cbff34d258dd3db21a5d66b;
    uint256 private constant HALF_LO = 0xb23ba5c279c2895fb39869507b587b120f55ffff58a9ffffdcff7fffffffd555;

    /// @notice -G2 (the negated G2 generator), so that e(sig, -G2) * e(H(m), pk) == 1 checks a
    ///         signature in one pairing call.
    bytes internal constant NEG_G2 =
        hex"00000000000000000000000000000000024aa2b2f08f0a91260805272dc51051c6e47ad4fa403b02b4510b647ae3d1770bac0326a805bbefd48056c8c121bdb8"
        hex"0000000000000000000000000000000013e02b6052719f607dacd3a088274f65596bd0d09920b61ab5da61bbdc7f5049334cf11213945d57e5ac7d055d042b7e"
        hex"000000000000000000000000000000000d1b3cc2c7027888be51d9ef691d77bcb679afda66c73f17f9ee3837a55024f78c71363275a75d75d86bab79f74782aa"
        hex"0000000000000000000000000000000013fa4d4a0ad8b1ce186ed5061789213d993923066dddaf1040bc3ff59f825c78df74f2d75467e25e0f55f8a00fa030ed";
    /// @notice The G1 generator and its negation (the constructor's public-key check pairs them).
    bytes internal constant G1_GEN =
        hex"0000000000000000000000000000000017f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb"
        hex"0000000000000000000000000000000008b3f481e3aaa0f1a09e30ed741d8ae4fcf5e095d5d00af600db18cb2c04b3edd03cc744a2888ae40caa232946c5e7e1";
    bytes internal constant NEG_G1 =
        hex"0000000000000000000000000000000017f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb"
        hex"00000000000000000000000000000000114d1d6855d545a8aa7d76c8cf2e21f267816aef1db507c96655b9d5caac42364e6f38ba0ecb751bad54dcd6b939c2ca";

    /// @notice Whether (hi, lo) is a canonical field element: below p, so the top 16 bytes are zero.
    function isFp(uint256 hi, uint256 lo) internal pure returns (bool) {
        return hi < P_HI || (hi == P_HI && lo < P_LO);
    }

    /// @notice base^e mod p with the MODEXP precompile; `base` is any 64-byte big-endian number
    ///         (hi, lo), so e = 1 reduces 512 bits to a field element. The result is canonical.
    function modexp(uint256 hi, uint256 lo, uint8 e) internal view returns (uint256 rhi, uint256 rlo) {
        bool ok;
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, 64) // length of the base
            mstore(add(m, 0x20), 1) // length of the exponent
            mstore(add(m, 0x40), 64) // length of the modulus
            mstore(add(m, 0x60), hi)
            mstore(add(m, 0x80), lo)
            mstore8(add(m, 0xa0), e)
            mstore(add(m, 0xa1), P_HI)
            mstore(add(m, 0xc1), P_LO)
            ok := staticcall(gas(), MODEXP, m, 0xe1, m, 0x40)
            rhi := mload(m)
            rlo := mload(add(m, 0x20))
        }
        // INVARIANT: MODEXP fails only when out of gas; never return an unreduced value.
        require(ok);
    }

    /// @notice Whether (x, y) satisfies the G1 curve equation y^2 = x^3 + 4 (x, y canonical).
    function isOnCurveG1(uint256 xhi, uint256 xlo, uint256 yhi, uint256 ylo) internal view returns (bool) {
        (uint256 y2hi, uint256 y2lo) = modexp(yhi, ylo, 2);
        (uint256 hi, uint256 lo) = modexp(xhi, xlo, 3);
        // x^3 + 4 mod p in two words: x^3 < p, so one conditional subtraction reduces the sum.
        unchecked {
            lo += 4;
            if (lo < 4) hi += 1;
            if (!isFp(hi, lo)) {
                if (lo < P_LO) hi -= 1;
                lo -= P_LO;
                hi -= P_HI;
            }
        }
        return hi == y2hi && lo == y2lo;
    }

    /// @notice The 48-byte compressed form (ZCash serialization, what drand publishes) of the
    ///         canonical, finite point (x, y): x with the compression flag and y's sign flag.
    function compressG1(uint256 xhi, uint256 xlo, uint256 yhi, uint256 ylo) internal pure returns (bytes memory) {
        bool largest = yhi > HALF_HI || (yhi == HALF_HI && ylo > HALF_LO);
        // x < p < 2^381 leaves the three top bits of the 48 bytes free for the flags.
        uint256 flags = largest ? 0xa0 : 0x80;
        return abi.encodePacked(bytes16(uint128(xhi | (flags << 120))), bytes32(xlo));
    }

    /// @notice RFC 9380 hash_to_curve onto G1 (suite BLS12381G1_XMD:SHA-256_SSWU_RO_): returns the
    ///         128-byte point. MAP_FP_TO_G1 maps and clears the cofactor; clearing is linear, so
    ///         map(u0) + map(u1) equals clear(map_to_curve(u0) + map_to_curve(u1)).
    function hashToG1(bytes memory message, bytes memory dst) internal view returns (bytes memory) {
        (bytes32 b1, bytes32 b2, bytes32 b3, bytes32 b4) = expandMessageXmd128(message, dst);
        (uint256 u0hi, uint256 u0lo) = modexp(uint256(b1), uint256(b2), 1);
        (uint256 u1hi, uint256 u1lo) = modexp(uint256(b3), uint256(b4), 1);
        return g1Add(mapFpToG1(u0hi, u0lo), mapFpToG1(u1hi, u1lo));
    }

    /// @notice expand_message_xmd (RFC 9380 5.3.1) with SHA-256 for len_in_bytes = 128, the four
    ///         32-byte blocks b_1..b_4 of its output. `dst` must be at most 255 bytes.
    function expandMessageXmd128(bytes memory message, bytes memory dst)
        internal
        pure
        returns (bytes32 b1, bytes32 b2, bytes32 b3, bytes32 b4)
    {
        bytes memory dstPrime = abi.encodePacked(dst, uint8(dst.length));
        // msg_prime = Z_pad (64 zero bytes) || msg || I2OSP(128, 2) || I2OSP(0, 1) || DST_prime
        bytes32 b0 = sha256(abi.encodePacked(bytes32(0), bytes32(0), message, uint16(128), uint8(0), dstPrime));
        b1 = sha256(abi.encodePacked(b0, uint8(1), dstPrime));
        b2 = sha256(abi.encodePacked(b0 ^ b1, uint8(2), dstPrime));
        b3 = sha256(abi.encodePacked(b0 ^ b2, uint8(3), dstPrime));
        b4 = sha256(abi.encodePacked(b0 ^ b3, uint8(4), dstPrime));
    }

    /// @notice MAP_FP_TO_G1 (SSWU map, isogeny and cofactor clearing) of a canonical field element.
    function mapFpToG1(uint256 hi, uint256 lo) internal view returns (bytes memory p) {
        p = new bytes(128);
        bool ok;
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, hi)
            mstore(add(m, 0x20), lo)
            ok := staticcall(gas(), MAP_FP_TO_G1, m, 0x40, add(p, 0x20), 0x80)
        }
        // INVARIANT: the input is canonical (MODEXP's output), so only running out of gas fails.
        require(ok);
    }

    /// @notice G1ADD of two 128-byte points on the curve.
    function g1Add(bytes memory a, bytes memory b) internal view returns (bytes memory p) {
        p = new bytes(128);
        bytes memory input = abi.encodePacked(a, b);
        bool ok;
        assembly ("memory-safe") {
            ok := staticcall(gas(), G1ADD, add(input, 0x20), 0x100, add(p, 0x20), 0x80)
        }
        // INVARIANT: both inputs come from MAP_FP_TO_G1, so only running out of gas fails.
        require(ok);
    }

    /// @notice Whether e(a1, b1) * e(a2, b2) == 1 (a G1 points of 128 bytes, b G2 points of 256).
    ///         False, not a revert, when the precompile refuses an input: a point off its curve,
    ///         outside the prime-order subgroup, or not canonically encoded. A refused call
    ///         consumes the gas forwarded to it, which is the caller's.
    function pairing2(bytes memory a1, bytes memory b1, bytes memory a2, bytes memory b2)
        internal
        view
        returns (bool)
    {
        bytes memory input = abi.encodePacked(a1, b1, a2, b2);
        if (input.length != 768) return false;
        bool ok;
        uint256 result;
        assembly ("memory-safe") {
            let out := mload(0x40)
            ok := staticcall(gas(), PAIRING, add(input, 0x20), 768, out, 0x20)
            result := mload(out)
        }
        return ok && result == 1;
    }
}

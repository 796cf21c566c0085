// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MerkleProof} from "./MerkleProof.sol";

/// @title MachineState: the dispute machine's commitments, opened on chain
/// @notice The formats of docs/MACHINE.md "Formats", twins of src/trace/vector.ts and
///         src/dispute/machine/state.ts: vector roots (256-word chunks), frames (64 slot roots),
///         micro-states, and version-2 trace leaves. Every function either returns the opened
///         value or reports that the opening does not match its root; none trusts a length, index
///         or path it is given.
library MachineState {
    /// @notice Words per vector chunk (1,024 bytes, little-endian).
    uint256 internal constant CHUNK = 256;
    /// @notice Depth of a frame's tree: 64 slots.
    uint256 internal constant FRAME_DEPTH = 6;
    /// @notice Leaf tag of a micro-state (tags 7-11 are the first game's leaf kinds).
    uint8 internal constant MICRO = 12;

    /// @notice One element's program state after `step` micro-steps (docs/MACHINE.md "Micro-states").
    struct MicroState {
        uint32 op;
        uint64 elem;
        uint64 step;
        uint32[8] r;
        bytes data;
    }

    /// @notice A chunk of a vector and its path under the vector root.
    struct Opening {
        uint32 chunkIndex;
        bytes chunk;
        bytes32[] path;
    }

    /// @notice sha256(0x00 || abi.encode(uint8 12, op, elem, step, r, data)).
    function leafOf(MicroState memory s) internal pure returns (bytes32) {
        return MerkleProof.leafHash(abi.encode(MICRO, s.op, s.elem, s.step, s.r, s.data));
    }

    /// @notice Depth of the chunk tree of an n-word vector (the length of every opening path).
    function vectorDepth(uint256 n) internal pure returns (uint256 d) {
        uint256 chunks = n == 0 ? 1 : (n + CHUNK - 1) / CHUNK;
        while ((uint256(1) << d) < chunks) d++;
    }

    /// @notice True when `o` is chunk `o.chunkIndex` of an n-word vector with root `root`: the
    ///         chunk has exactly the length the vector gives it and its path has the vector's depth.
    function isChunk(bytes32 root, uint256 n, Opening memory o) internal view returns (bool) {
        uint256 c = o.chunkIndex;
        if (c * CHUNK >= n) return false;
        uint256 nWords = n - c * CHUNK < CHUNK ? n - c * CHUNK : CHUNK;
        if (o.chunk.length != nWords * 4 || o.path.length != vectorDepth(n)) return false;
        return MerkleProof.verify(root, MerkleProof.leafHash(o.chunk), c, o.path);
    }

    /// @notice Word `index` of an n-word vector, from an opening of its chunk; ok = false when the
    ///         opening is not that chunk under `root`.
    function word(bytes32 root, uint256 n, uint256 index, Opening memory o) internal view returns (bool ok, uint32 w) {
        if (index >= n || o.chunkIndex != index / CHUNK || !isChunk(root, n, o)) return (false, 0);
        return (true, wordAt(o.chunk, index % CHUNK));
    }

    /// @notice `count` consecutive words from `index` (within one chunk: the machine's reads are
    ///         aligned), words past the vector's end read as +0 bits.
    function words(bytes32 root, uint256 n, uint256 index, uint256 count, Opening memory o)
        internal
        view
        returns (bool ok, uint32[] memory w)
    {
        if (index >= n || o.chunkIndex != index / CHUNK || (index % CHUNK) + count > CHUNK || !isChunk(root, n, o)) {
            return (false, w);
        }
        w = new uint32[](count);
        uint256 base = index % CHUNK;
        uint256 m = n - index < count ? n - index : count; // words past the vector's end stay +0
        for (uint256 i; i < m; ++i) w[i] = wordAt(o.chunk, base + i);
        return (true, w);
    }

    /// @notice Little-endian word i of a chunk.
    function wordAt(bytes memory chunk, uint256 i) internal pure returns (uint32 w) {
        uint256 o = i * 4;
        uint256 v;
        assembly ("memory-safe") {
            // a word past the chunk's end: Panic(0x32), as the checked byte reads gave
            if or(lt(mload(chunk), 4), gt(o, sub(mload(chunk), 4))) {
                mstore(0, shl(224, 0x4e487b71))
                mstore(4, 0x32)
                revert(0, 0x24)
            }
            v := shr(224, mload(add(add(chunk, 32), o)))
        }
        w = uint32(((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >> 8) & 0xff00) | (v >> 24));
    }

    /// @notice True when slot `slot` of `frame` holds `slotRoot` (path of FRAME_DEPTH hashes).
    function isSlot(bytes32 frame, uint256 slot, bytes32 slotRoot, bytes32[] memory path) internal view returns (bool) {
        return path.length == FRAME_DEPTH && MerkleProof.verify(frame, slotRoot, slot, path);
    }

    /// @notice True when `post` is `pre` with slot `slot` changed from ZERO to `slotRoot` and
    ///         nothing else changed (one path serves both trees: the other 63 slots are shared).
    function isUpdate(bytes32 pre, bytes32 post, uint256 slot, bytes32 slotRoot, bytes32[] memory path)
        internal
        view
        returns (bool)
    {
        return isSlot(pre, slot, bytes32(0), path) && isSlot(post, slot, slotRoot, path);
    }

    /// @notice Trace leaf v2 of layer `layer` at `pos`: u32 pos || u32 layer || x || k || v roots.
    function layerLeaf(uint32 pos, uint32 layer, bytes32 x, bytes32 k, bytes32 v) internal pure returns (bytes32) {
        return MerkleProof.leafHash(abi.encodePacked(le32(pos), le32(layer), x, k, v));
    }

    /// @notice Trace leaf v2 of the head at `pos`: u32 pos || u32 nLayer || u32 token || logits root.
    function headLeaf(uint32 pos, uint32 nLayer, uint32 token, bytes32 logits) internal pure returns (bytes32) {
        return MerkleProof.leafHash(abi.encodePacked(le32(pos), le32(nLayer), le32(token), logits));
    }

    function le32(uint32 x) internal pure returns (bytes4) {
        return bytes4(((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >> 8) & 0xff00) | (x >> 24));
    }
}

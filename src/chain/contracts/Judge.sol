// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {BadActProof} from "./Errors.sol";
import {OneStep} from "./OneStep.sol";
import {MerkleProof} from "./lib/MerkleProof.sol";

/// @title Judge: the one-step checks, deployed on their own
/// @notice Stateless: the DisputeGame calls it for the heavy primitive checks (weight and
///         activation proofs, block dot products, the SUM8 fold) so that the game stays under the EIP-170
///         code size limit. Every function is a thin wrapper over the OneStep library; reverts
///         (BadTensorProof, BadRowProof, BadActProof) bubble up to the caller.
contract Judge {
    /// @notice Reverts BadTensorProof unless `t` is a tensor leaf under `modelRoot`.
    function tensor(bytes32 modelRoot, OneStep.TensorLeaf calldata t) external view {
        OneStep.provenTensor(modelRoot, t.tensorIndex, t.name, t.ggmlType, t.rows, t.cols, t.rowRoot, t.tensorPath);
    }

    /// @notice What the game has proven about the row a block state belongs to.
    struct BoundRow {
        uint32 ggmlType;
        uint64 rows;
        uint64 cols;
        bytes32 rowRoot;
        bytes32 actRoot; // the agreed activation's block root for this type's B
    }

    /// @notice A block state of a proven tensor: reverts BadRowProof unless `w` is the chunk of row
    ///         `post.row` holding the block, BadActProof unless (post.da, post.qa) is block
    ///         `post.blockIndex` under `r.actRoot` (path `actPath`); true when the lanes follow.
    function blockTerm(
        BoundRow calldata r,
        OneStep.BlockStep calldata pre,
        OneStep.BlockStep calldata post,
        OneStep.ChunkProof calldata w,
        bytes32[] calldata actPath
    ) external view returns (bool) {
        OneStep.provenRowChunk(r.rowRoot, r.rows, post.row, w.chunkIndex, w.chunk, w.chunkPath, w.rowPath);
        if (!MerkleProof.verify(r.actRoot, OneStep.actBlockLeaf(post.da, post.qa), post.blockIndex, actPath)) revert BadActProof(post.blockIndex);
        return OneStep.blockLanes(r.ggmlType, r.cols, pre, post, w.chunkIndex, w.chunk);
    }

    /// @notice SUM8's closing tree over eight lanes (binary32 bits).
    function fold(uint32[8] calldata lanes) external pure returns (uint32) {
        return OneStep.fold(lanes);
    }
}

/**
 * The trace layer's Merkle and byte vocabulary in one import: the tree (src/engine/hash/merkle.ts,
 * below the model root that needs it) and the byte helpers (src/engine/bytes.ts). Nothing is
 * defined here, so trace roots, receipt trees and model roots are one tree shape by construction.
 */
export {
  buildLevels, type Hash, leafHash, leafHashInto, merkleProof, merkleRoot, merkleRootInPlace, merkleRootPacked, nodeHash, sha256, sha256Once,
  treeDepth, verifyProof, ZERO,
} from '../engine/hash/merkle.js'
export { concatBytes, equalBytes, fromHex, toHex } from '../engine/bytes.js'

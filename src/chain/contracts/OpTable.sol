// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title OpTable: which computation a position in the dispute game stands for
/// @notice The judge derives the program of a disputed transition from where the descent went,
///         not from what the provider says: the trace leaf gives (position, layer) (docs/TRACE.md),
///         the op-level leaf index the op (this table, docs/CHAIN.md "Op table"), the element-level
///         leaf index the output row, the primitive leaf index the block. Twin: src/chain/opTable.ts.
///
///         Layer transition (trace leaf with layer < nLayer), op-level leaves 0..15, leaf k = the
///         state after op k (leaf 0 = the layer's input, leaf 15 = its output):
///           1 attention RMSNorm        2 Q = attn_q x       3 K = attn_k x       4 V = attn_v x
///           5 Q/K/V biases (qwen2; the identity for llama)   6 RoPE on Q and K    7 attention
///           8 attn_output x            9 residual add      10 FFN RMSNorm       11 ffn_gate x
///          12 ffn_up x                13 SILU(gate) * up   14 ffn_down x        15 residual add
///         The states after ops 1, 7, 10, 13 (and the head's 1) are activation states that commit
///         the quantized blocks of their output (OneStep.ActState); a matmul's element states name
///         the activation state they multiply, and each block state's activation is proven in it.
///         Head transition (layer == nLayer), leaves 0..3:
///           1 output RMSNorm           2 logits = output x (token_embd when the embeddings are tied)
///           3 sampling (penalty, top-k/p, min-p, the RAND draw) and the next token
library OpTable {
    uint8 internal constant OTHER = 0;
    uint8 internal constant MATMUL = 1;
    uint8 internal constant SAMPLE = 2;

    uint64 internal constant LAYER_OPS = 15; // last op-level leaf of a layer transition
    uint64 internal constant HEAD_OPS = 3; // last op-level leaf of a head transition

    /// @notice The last op-level leaf of a transition (its number of ops).
    function lastLeaf(bool head) internal pure returns (uint64) {
        return head ? HEAD_OPS : LAYER_OPS;
    }

    /// @notice The kind of op `opLeaf` of a layer (head = false) or head transition.
    function kind(bool head, uint256 opLeaf) internal pure returns (uint8) {
        if (head) {
            if (opLeaf == 2) return MATMUL;
            if (opLeaf == 3) return SAMPLE;
            return OTHER;
        }
        if (opLeaf == 2 || opLeaf == 3 || opLeaf == 4 || opLeaf == 8 || opLeaf == 11 || opLeaf == 12 || opLeaf == 14) return MATMUL;
        return OTHER;
    }

    /// @notice The op whose output a matmul op multiplies (its state is an activation state,
    ///         OneStep.ActState): Q, K, V <- attention RMSNorm (1); attn_output <- attention (7);
    ///         gate, up <- FFN RMSNorm (10); down <- SILU(gate) * up (13); the head's logits <- the
    ///         output RMSNorm (1). 0 for ops that are not matmuls.
    function actSource(bool head, uint256 opLeaf) internal pure returns (uint256) {
        if (head) return opLeaf == 2 ? 1 : 0;
        if (opLeaf == 2 || opLeaf == 3 || opLeaf == 4) return 1;
        if (opLeaf == 8) return 7;
        if (opLeaf == 11 || opLeaf == 12) return 10;
        if (opLeaf == 14) return 13;
        return 0;
    }

    /// @notice True when `name` is the weight tensor of matmul op `opLeaf` in `layer` (GGUF names,
    ///         e.g. "blk.3.ffn_down.weight"). The head's logits may come from "output.weight" or,
    ///         for tied embeddings, "token_embd.weight".
    function isTensorOf(bool head, uint256 layer, uint256 opLeaf, bytes memory name) internal pure returns (bool) {
        bytes32 h = keccak256(name);
        if (head) return opLeaf == 2 && (h == keccak256("output.weight") || h == keccak256("token_embd.weight"));
        bytes memory suffix;
        if (opLeaf == 2) suffix = "attn_q.weight";
        else if (opLeaf == 3) suffix = "attn_k.weight";
        else if (opLeaf == 4) suffix = "attn_v.weight";
        else if (opLeaf == 8) suffix = "attn_output.weight";
        else if (opLeaf == 11) suffix = "ffn_gate.weight";
        else if (opLeaf == 12) suffix = "ffn_up.weight";
        else if (opLeaf == 14) suffix = "ffn_down.weight";
        else return false;
        return h == keccak256(abi.encodePacked("blk.", decimal(layer), ".", suffix));
    }

    /// @dev `x` in decimal ASCII, no leading zeros.
    function decimal(uint256 x) internal pure returns (bytes memory out) {
        if (x == 0) return "0";
        uint256 n;
        for (uint256 y = x; y != 0; y /= 10) n++;
        out = new bytes(n);
        for (; x != 0; x /= 10) out[--n] = bytes1(uint8(48 + x % 10));
    }
}

{
  "variables": {
    "libsecp256k1%": "libsecp256k1"
  },
  "targets": [
    {
      "target_name": "tessera_q8",
      "sources": ["q8.cc"],
      "cflags_cc": ["-O2", "-ffp-contract=off", "-fno-fast-math"],
      "cflags_cc!": ["-fno-exceptions"]
    },
    {
      "target_name": "tessera_attention",
      "sources": ["attention.cc"],
      "cflags_cc": ["-O2", "-ffp-contract=off", "-fno-fast-math"],
      "cflags_cc!": ["-fno-exceptions"]
    },
    {
      "target_name": "tessera_train",
      "sources": ["train.cc"],
      "cflags_cc": ["-O2", "-ffp-contract=off", "-fno-fast-math", "-pthread"],
      "cflags_cc!": ["-fno-exceptions"],
      "ldflags": ["-pthread"]
    },
    {
      "target_name": "tessera_secp",
      "sources": ["secp.cc", "<(libsecp256k1)/src/secp256k1.c"],
      "include_dirs": ["<(libsecp256k1)", "<(libsecp256k1)/src", "<(libsecp256k1)/include"],
      "defines": [
        "SECP256K1_API=",
        "ECMULT_GEN_PREC_BITS=4",
        "ECMULT_WINDOW_SIZE=10",
        "ENABLE_MODULE_RECOVERY=1",
        "USE_ENDOMORPHISM=1",
        "USE_NUM_NONE=1",
        "USE_FIELD_INV_BUILTIN=1",
        "USE_SCALAR_INV_BUILTIN=1"
      ],
      "conditions": [
        [
          "target_arch=='x64' and OS!='win'",
          { "defines": ["HAVE___INT128=1", "USE_ASM_X86_64=1", "USE_FIELD_5X52=1", "USE_SCALAR_4X64=1"] },
          { "defines": ["USE_FIELD_10X26=1", "USE_SCALAR_8X32=1"] }
        ]
      ],
      "cflags_c": ["-O2", "-fvisibility=hidden", "-Wno-unused-function", "-Wno-nonnull-compare"],
      "cflags_cc": ["-O2", "-fvisibility=hidden"],
      "cflags_cc!": ["-fno-exceptions"]
    }
  ]
}

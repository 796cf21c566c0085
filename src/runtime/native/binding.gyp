{
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
      "sources": ["secp.cc"],
      "cflags_cc": ["-O2"],
      "cflags_cc!": ["-fno-exceptions"]
    }
  ]
}

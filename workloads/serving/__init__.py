"""Model serving: KServe resources for clusters (``cluster``) and real model servers on loopback (``local``)."""

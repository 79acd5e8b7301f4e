/**
 * Source changes that leave every recorded run's numbers as they were.
 *
 * A run record names the source hash of the code that made it (`CodeVersion` in
 * `./code_version.ts`); any other hash makes it stale, because a change under `ops/`, `models/`
 * or `data/` may change the arithmetic (a summation order, a kernel choice) and with it every
 * number a training run produces. Some changes cannot: a buffer size that only a failing run ever reached, a clearer
 * error message, a refactor that encodes the same dispatches in the same order. Each such change
 * is listed here with the hash before and after it, what changed and why no completed run can
 * compute differently. A record whose hash is linked to the current one by a chain of these
 * counts as current (see `recordStaleness`).
 *
 * A change belongs here only with that argument written down; when in doubt, leave it out and
 * let the records be retrained.
 *
 * @module
 */
/**
 * One source change that computes the numbers of every completed run exactly as before it, or of
 * every run but those trained with the settings in `notFor`.
 */
export interface SourceEquivalence {
  /** The source hash before the change (`sha256:` and 64 hex digits). */
  readonly from: string;
  /** The source hash after it. */
  readonly to: string;
  /** What changed, in a few words (shown beside records it keeps current). */
  readonly change: string;
  /** Why no completed run computes differently, and how that was checked. */
  readonly evidence: string;
  /**
   * Training settings (`TrainConfig` keys and values) whose runs the change does alter: a record
   * trained with all of them is not kept current by this change.
   */
  readonly notFor?: Readonly<Record<string, string | number | boolean>>;
  /** Models whose runs the change alters, whatever their settings: their records are not kept
   * current by this change. */
  readonly notForModels?: readonly string[];
}

/** The registered equivalences, oldest first. */
export const SOURCE_EQUIVALENCES: readonly SourceEquivalence[] = [
  {
    from: "sha256:0761c121967728e89811a4015fcd1e2665ef31610bc99dc373f6e636fc2707df",
    to: "sha256:0937790e67bee05e163c6feed5f910b38d8f7b717951ba3a03b721cb03c34e78",
    change: "pooled buffers capped at the binding limit; one redundant test in the transformer",
    evidence: "A pooled buffer's capacity changes only where its size class exceeded the " +
      "device's binding limit (2 GiB − 4 bytes on NVIDIA's driver): such a buffer failed " +
      "validation when bound, so no completed run allocated one, and every buffer of every " +
      "completed run has the capacity it had. TransformerEncoder's last layer tests its output " +
      "rows once instead of twice: the same tensors are made in the same order. Checked on an " +
      "NVIDIA H100: Mamba4Rec (Beauty, dropout 0, seed 2020) and SASRec (Video Games, seed " +
      "2022) retrained by the new code repeat their records' losses, validation and test " +
      "metrics and peak memory exactly, epoch for epoch.",
  },
  {
    from: "sha256:0937790e67bee05e163c6feed5f910b38d8f7b717951ba3a03b721cb03c34e78",
    to: "sha256:580feeb0f3245e8df8ef7db911c3b5b63ce6c4db16ebec0b6646c951ef0e7693",
    change: "all-positions training scores only the real targets",
    notFor: { trainingMode: "all-positions" },
    evidence: "Only the all-positions objective changed (`models/training/layouts.ts`): it " +
      "gathers the rows with a target before the scores. Prefix and packed steps, evaluation " +
      "and every kernel run as before. All-positions runs now sum their loss and the item " +
      "table's gradient over fewer rows, so their numbers differ in rounding (a test bounds " +
      "it); records trained that way are not covered.",
  },
  {
    from: "sha256:580feeb0f3245e8df8ef7db911c3b5b63ce6c4db16ebec0b6646c951ef0e7693",
    to: "sha256:73e1b5aa5572abaefcfba4d9974aa5b33e1416e1374006b7533ca99972fc508b",
    change: "tuning options of the streaming step kernel",
    evidence: "`mambaStep` takes a tuning (states loaded at a time, the state row loaded " +
      "first) whose default generates the kernel's WGSL byte for byte as before (compared " +
      "for five sizes), and the streaming form passes its own through. No training or " +
      "evaluation run dispatches the step kernel.",
  },
  {
    from: "sha256:73e1b5aa5572abaefcfba4d9974aa5b33e1416e1374006b7533ca99972fc508b",
    to: "sha256:8abb45e90904be66e486540f93a5b19f131e1713e9c203e6aad83c00cfb5e3c3",
    change: "the optional all-positions setting targetsPerStep",
    evidence: "A new training setting, `targetsPerStep`, absent unless given: without it the " +
      "batcher gets `batchSize` windows as before and no other line runs differently. Runs " +
      "that set it did not exist before it.",
  },
  {
    from: "sha256:8abb45e90904be66e486540f93a5b19f131e1713e9c203e6aad83c00cfb5e3c3",
    to: "sha256:c91847dc793daa9e0f567551f5b23b14ae8a843c451c2f097b6f446715eae737",
    change: "SSD4Rec: the last layer read at the last tokens only, one input projection for " +
      "both directions",
    notForModels: ["ssd4rec"],
    evidence: "A new op, `ssdScanLast`, a last-tokens path of the Mamba-2 block and its " +
      "input projection shared by both directions, which only SSD4Rec builds: SSD4Rec's " +
      "numbers change in rounding (tests bound it against the float64 model), so its records " +
      "are not covered. Every other model runs the same " +
      "dispatches as before: the SSD scan's chunking helper moved between its modules " +
      "unchanged, and its shared WGSL prelude, which gained a switch to leave out the chunk " +
      "table's accessors, generates byte for byte the same text by default (compared for " +
      "four configurations); no other model dispatches the SSD scan.",
  },
  {
    from: "sha256:c91847dc793daa9e0f567551f5b23b14ae8a843c451c2f097b6f446715eae737",
    to: "sha256:15083ea543f819aa7901b293ebd22f971719015250efa0aa17bd56b394fddf9d",
    change: "the streaming step kernel may take several streams a workgroup",
    evidence: "Only `ops/sequence/mamba_step.ts` changed: `mambaStep`, which the streaming " +
      "form alone dispatches (no training or evaluation run does), gained a tuning of streams " +
      "per workgroup. Every other file under ops/, models/ and data/ is byte for byte as " +
      "before.",
  },
  {
    from: "sha256:15083ea543f819aa7901b293ebd22f971719015250efa0aa17bd56b394fddf9d",
    to: "sha256:3f095c9c805df784f0a4adf6168717a79dc25466ba368d3426ba5c3a020cc4f8",
    change: "the step form of a one-layer SSD4Rec; SSD4Rec's layer tail shared with it; " +
      "profiles over several submissions",
    evidence: "New code only the streaming forms use (`biSsdStep`, `SSD4RecStream`, " +
      "`openStream`, `fullRepresentations`, `packHistories`, the slot bookkeeping moved out " +
      "of `Mamba4RecStream` unchanged, the streaming files moved into `models/streaming/`; " +
      "the step ops' shape checks share `assertShape`). " +
      "SSD4Rec's " +
      "forward now calls " +
      "methods for its embedding, the Bi-SSD sum with LayerNorm and feed-forward, and the " +
      "block's gated norm and output projection: the same ops on the same tensors in the same " +
      "order. Checked on lavapipe: the loss and every parameter's gradient of a training step " +
      "(dropout on; 1 layer β 0.3, 2 layers β 0.1 with the embedding LayerNorm, 2 layers β 0) " +
      "are the same bit for bit before and after. The dispatch profiler resolves its " +
      "timestamps from 256-byte-aligned offsets; no training or evaluation run profiles.",
  },
  {
    from: "sha256:3f095c9c805df784f0a4adf6168717a79dc25466ba368d3426ba5c3a020cc4f8",
    to: "sha256:4b87a3f27e4cd9d407ea24ec889ead6d9ae3ca86078c17ccb322d8665e7eb1d0",
    change: "the scan at the last tokens loads several tokens' values before their products",
    evidence: "Only `ssdScanLast`'s WGSL changed (`last_shaders.ts`, its shared pieces moved to " +
      "`last_shader_parts.ts`): the forward loads 4 entries of Δ, 8 of B and several tokens' x " +
      "before multiplying them, the backward likewise for Δ and G·x_t (4 entries at once) and " +
      "for its sum over B into dC. Every " +
      "accumulator takes the same fused multiply-adds of the same values in the same order, " +
      "and the values stored are the same; only when the loads are issued differs. Checked on " +
      "lavapipe: y and every input's gradient of `ssdScanLast` at eight shapes (segments of " +
      "1 to 300 tokens, several staged blocks, H·P and G·N not multiples of the workgroup, " +
      "more heads than invocations) are the same bit for bit before and after.",
  },
  {
    from: "sha256:4b87a3f27e4cd9d407ea24ec889ead6d9ae3ca86078c17ccb322d8665e7eb1d0",
    to: "sha256:859dd48af1b62a7c805a647d1d444bbf1c5d0c7fdbd3d960ff4ed5666b9af460",
    change: "the step kernels load several states and weights before using them",
    evidence: "Only the streaming forms' step kernels changed, which no training or evaluation " +
      "run dispatches: `biSsdStep` loads 8 states of a pool before it updates them and " +
      "`mambaStep` 8 weights of `x_proj` before their products, with the same arithmetic in " +
      "the same order; their float64 references moved to files of their own unchanged. " +
      "Checked on lavapipe: the streamed scores of three one-layer SSD4Recs (N 4, 8 and 19) " +
      "and of three Mamba4Recs (d_inner 32, 26 and 128; 1, 3 and 2 streams a workgroup) are " +
      "the same bit for bit.",
  },
  {
    from: "sha256:859dd48af1b62a7c805a647d1d444bbf1c5d0c7fdbd3d960ff4ed5666b9af460",
    to: "sha256:96f72d4ab0339493433a624dbdfcac4ef419e89233cfc37c8abfe410e7edf246",
    change: "two host arrays filled by plain loops instead of a typed array's `from`",
    evidence: "The streams' per-user event counts (`SlotStream.stepRound`) and the 0/1 key " +
      "padding uploaded from a host array (`padTensor`) are built by index loops with the " +
      "same values as before; no kernel, shape or order of work changed.",
  },
  {
    from: "sha256:96f72d4ab0339493433a624dbdfcac4ef419e89233cfc37c8abfe410e7edf246",
    to: "sha256:ec5e40eed253ef7020f1b2b0243999fc761e65ca051e8059b58dbc915f454494",
    change: "the buffer pool serves a class's first-created free buffer, not its last released",
    evidence: "Only which free buffer of a size class backs a new tensor changed " +
      "(`BufferPool.reuse`); sizes, eviction, accounting and every kernel are as before, and " +
      "every kernel writes its whole output. The runtime also counts the bind groups it " +
      "creates (`bindGroupsCreated`), which nothing reads but benchmarks. Checked on " +
      "lavapipe: two epochs of SSD4Rec and of " +
      "Mamba4Rec on the first 3,000 users of Amazon Beauty give the same loss and the same " +
      "validation metrics bit for bit before and after.",
  },
  {
    from: "sha256:ec5e40eed253ef7020f1b2b0243999fc761e65ca051e8059b58dbc915f454494",
    to: "sha256:bfa89593d477951e6fe1e7f859dd7791af4aeb5c2f4e49754c09fe148972e183",
    change: "generated WGSL is kept per key instead of rebuilt at every launch",
    evidence: "The kernel generators return the source they made the first time for the same " +
      "arguments (`ops/wgsl/cache.ts`); the SSD scan's are keyed without the batch and length, " +
      "which no SSD source embeds. The test suite checks every cache hit against a fresh " +
      "generation (`SSMREC_CHECK_SHADER_CACHE=1`), so every kernel launched is the one built " +
      "before. The runtime also counts its submits and host writes, which nothing reads but " +
      "benchmarks, and one doc comment of the matmul plan grew. Checked on lavapipe: two " +
      "epochs of SSD4Rec and of Mamba4Rec on the first 3,000 users of Amazon Beauty give the " +
      "same loss and the same validation metrics bit for bit before and after.",
  },
  {
    from: "sha256:bfa89593d477951e6fe1e7f859dd7791af4aeb5c2f4e49754c09fe148972e183",
    to: "sha256:7e7d36c81bad554606eeda21d9dc0fde31b8e6f4c6f4a150336e795d96542721",
    change: "the streaming step runs the layers after each Mamba block as one kernel",
    evidence: "Only the streaming form changed (`layerTail`, which no training or evaluation " +
      "run dispatches); the normal CDF the GELU kernels paste moved to the shared math module " +
      "as the same text, so those kernels' sources are the same strings. Checked on lavapipe: " +
      "one epoch of Mamba4Rec and of SSD4Rec on the first 2,000 users of Amazon Beauty gives " +
      "the same loss and validation metrics bit for bit before and after.",
  },
  {
    from: "sha256:7e7d36c81bad554606eeda21d9dc0fde31b8e6f4c6f4a150336e795d96542721",
    to: "sha256:5a3fbedd63952db262cbd956f5e4ba51a7d13fdff7b252a7ee875bb838c08183",
    change: "a stream uploads its users' event counts only when its step reads them",
    evidence: "Only the streaming forms changed: `EventRound.counts` became a method that " +
      "uploads the same values on its first call, which SSD4Rec's step makes and Mamba4Rec's " +
      "does not; no training or evaluation run opens a stream. The streaming tests (scores " +
      "equal to the full forward, restarts, the demo) pass unchanged.",
  },
  {
    from: "sha256:5a3fbedd63952db262cbd956f5e4ba51a7d13fdff7b252a7ee875bb838c08183",
    to: "sha256:dcd7929070f2b40a4a93bb97edade0bfa9ea697dc7ecf442ac014000d85a15a6",
    change: "a Mamba4Rec stream may run the layers after each block as separate ops",
    evidence: "Only the streaming form changed: `Mamba4RecStream` takes `fusedTail` (default " +
      "true, the kernel it ran before) so that benchmarks can time the separate ops beside " +
      "it; no training or evaluation run opens a stream.",
  },
  {
    from: "sha256:dcd7929070f2b40a4a93bb97edade0bfa9ea697dc7ecf442ac014000d85a15a6",
    to: "sha256:2de85cfbba132c9434f92e3c94d1af66dc05be1d31531347a3e2dfa7054e778b",
    change: "every kernel family keeps its sources through the one shared cache",
    evidence: "The ten families with caches of their own (matmul, layer norm, attention, fused " +
      "attention, gated RMSNorm, unary, binary, copy, split columns, Caser's convolution) now " +
      "use `shaderGenerator` with the same keys and the same generators, so every source is the " +
      "same string as before; the test suite checks each cache hit against a fresh generation. " +
      "Checked on lavapipe: one epoch of Mamba4Rec and of SSD4Rec on the first 2,000 users of " +
      "Amazon Beauty gives the same loss and validation metrics bit for bit before and after.",
  },
  {
    from: "sha256:2de85cfbba132c9434f92e3c94d1af66dc05be1d31531347a3e2dfa7054e778b",
    to: "sha256:d0c2351891cfb6d97e52d519d9743a8f2d7c3bbb72585646c58ea157347f00ff",
    change: "the stream takes its feed-forward weights from the model's layer object",
    evidence: "`FeedForward` gained read-only accessors (`w1`, `w2`, `norm`) and the streaming " +
      "form reads its tail's weights through them instead of by parameter name; the unary and " +
      "binary shader caches pass their generators directly. No computation changed. Checked " +
      "on lavapipe: one epoch of Mamba4Rec and of SSD4Rec on the first 2,000 users of Amazon " +
      "Beauty gives the same loss and validation metrics bit for bit before and after.",
  },
  {
    from: "sha256:d0c2351891cfb6d97e52d519d9743a8f2d7c3bbb72585646c58ea157347f00ff",
    to: "sha256:c67d4a3ec67adef1ebd495e4276d52fb87134e0edf4218291adfe66392cad74d",
    change: "the Bi-SSD step's float64 reference also returns each output's Σ|terms|",
    evidence: "Only a float64 reference changed (`biSsdStepReference`, which the tests call " +
      "and no training, evaluation or streaming run does); its outputs are as before, with " +
      "two scales added.",
  },
  {
    from: "sha256:c67d4a3ec67adef1ebd495e4276d52fb87134e0edf4218291adfe66392cad74d",
    to: "sha256:b798612d365edcf0b24eefa023708eb39ca5751fa635799fa393799df9769eef",
    change: "the Mamba4Rec stream runs the layers after each block as separate ops by default",
    evidence: "Only the streaming form and the kernel it may call changed: `Mamba4RecStream`'s " +
      "`fusedTail` defaults to false (the separate ops, measured faster), and `layerTail` loads " +
      "eight weights before it multiplies them, each sum still in the same order; no training " +
      "or evaluation run opens a stream. The layer-tail and streaming tests pass unchanged.",
  },
  {
    from: "sha256:b798612d365edcf0b24eefa023708eb39ca5751fa635799fa393799df9769eef",
    to: "sha256:97d61fa9c717d4636375d2e2c476b62e7ecc783de4a8002a822d34c941aecd11",
    change: "sums over leading dimensions run their last two passes as one dispatch",
    evidence: "`sumLeading` adds the same numbers in the same order (chunks of 64 rows in row " +
      "order, then the chunk sums in chunk order); only the dispatches changed. A test compares " +
      "it bit for bit with that tree added in float32 on the host, over 1 to 9,335 rows. " +
      "Checked on lavapipe: one epoch of Mamba4Rec and of SSD4Rec on the first 2,000 users of " +
      "Amazon Beauty gives the same loss and validation metrics bit for bit before and after.",
  },
  {
    from: "sha256:97d61fa9c717d4636375d2e2c476b62e7ecc783de4a8002a822d34c941aecd11",
    to: "sha256:8935bd679d6ad2430f4e68124de0d6c3cc1b30dc477127476f9dc407568ebae1",
    change: "the streaming step may load any number of its first states early",
    evidence: "Only `mambaStep`, the streaming form's kernel, changed: its tuning takes a count " +
      "of states loaded when the kernel starts (`prefetchStates`) instead of all or none; " +
      "every state is updated in the same order, and a test checks each tuning against the " +
      "default bit for bit. No training or evaluation run opens a stream.",
  },
  {
    from: "sha256:8935bd679d6ad2430f4e68124de0d6c3cc1b30dc477127476f9dc407568ebae1",
    to: "sha256:f22bbe003a253b9d2563e20cb00ff207fbbfacf875ca9028be2df9549f4f742b",
    change: "the streaming step can make its input projection itself",
    evidence: "Only the streaming form and its kernel changed: the step's WGSL moved to " +
      "`mamba_step_shader.ts`, and `mambaStepFromHidden` (used only with the stream's " +
      "`fusedInProjection`, off by default) makes x and z inside the step with matmul's sum " +
      "order; tests check it against the product then `mambaStep` bit for bit. No training " +
      "or evaluation run opens a stream.",
  },
  {
    from: "sha256:f22bbe003a253b9d2563e20cb00ff207fbbfacf875ca9028be2df9549f4f742b",
    to: "sha256:48458bd3db0958de9b535a7b3982bf3518078b82251eb980a8c7fe02ed4066fa",
    change: "the fused layer tail can write its rows straight into the stream's table",
    evidence: "Only the streaming form and its tail kernel changed: `layerTailInto` writes " +
      "row i to row slots[i] of a table (used by the stream's `fusedTail`, off by default, for " +
      "its last layer), the same values `layerTail` gives, which a test checks bit for bit; no " +
      "training or evaluation run opens a stream.",
  },
  {
    from: "sha256:48458bd3db0958de9b535a7b3982bf3518078b82251eb980a8c7fe02ed4066fa",
    to: "sha256:ada237729775bb4f5d0f7dcf6e5103360ec71f771864e883984b34ac360121c4",
    change: "the streaming kernels' small products come from one shared WGSL generator",
    evidence: "`mambaStep`'s two products and `layerTail`'s three are now generated by " +
      "`stagedProductWgsl` (`ops/wgsl/staged_product.ts`), each sum over the same terms in the " +
      "same order, and the float64 references of the step and the tail share one Linear " +
      "(`linearReference`); only streaming kernels and references changed, and their tests " +
      "(bit for bit against matmul and across tunings) pass unchanged. No training or " +
      "evaluation run opens a stream.",
  },
  {
    from: "sha256:ada237729775bb4f5d0f7dcf6e5103360ec71f771864e883984b34ac360121c4",
    to: "sha256:4b66514b910add35b54f8d33b62ff01dba200e4e1e4cd2ae02e82e8c6261adf4",
    change: "the best epoch's checkpoint keeps the weights only",
    evidence: "`best.safetensors` is written without Adam's moments (testing loads only its " +
      "`model.*` tensors, as before); `last.safetensors`, which resuming reads, is unchanged. No " +
      "step, kernel or evaluation changed: the trainer's resume test still matches an " +
      "uninterrupted run loss for loss and metric for metric.",
  },
  {
    from: "sha256:4b66514b910add35b54f8d33b62ff01dba200e4e1e4cd2ae02e82e8c6261adf4",
    to: "sha256:0256f34c14a3c0ba15d218904280588d970d878e1166d2eebdc0c70e78c471d4",
    change: "the streaming layer tail's products take four output columns per invocation",
    evidence: "Only `layerTail` (and the shared small-product generator's layout, which the step " +
      "kernel uses with one column per invocation, as before) changed; its test against float64 " +
      "and the separate ops passes, and the step's bit-for-bit tests pass unchanged. No training " +
      "or evaluation run opens a stream.",
  },
  {
    from: "sha256:0256f34c14a3c0ba15d218904280588d970d878e1166d2eebdc0c70e78c471d4",
    to: "sha256:5e27cc4d933056212a94dda7e58a71f5011789f87200b8360efc04c42b08fd3a",
    change: "the streaming step's products take the weights loaded at a time as a tuning",
    evidence: "`MambaStepTuning.weightLoads` (default 8, the count the step always used) only " +
      "changes how many weights an invocation loads before multiplying them; the step's tunings " +
      "test gives the default's results bit for bit with 1, 7 and 64. No training or " +
      "evaluation run opens a stream.",
  },
  {
    from: "sha256:5e27cc4d933056212a94dda7e58a71f5011789f87200b8360efc04c42b08fd3a",
    to: "sha256:0c6f88bb1db019b1edc05fbc7e33e0e8df3f38761eb836e6cf8a893f1ad293c3",
    change: "the streaming layer tail takes the rows each invocation sums as a tuning",
    evidence: "`LayerTailTuning.rowsPerInvocation` (default 1, the layout used before) only " +
      "changes how the tail's products are shared among invocations; its test gives the " +
      "default's results bit for bit with 2, 4 and 16. No training or evaluation run opens a " +
      "stream.",
  },
  {
    from: "sha256:0c6f88bb1db019b1edc05fbc7e33e0e8df3f38761eb836e6cf8a893f1ad293c3",
    to: "sha256:54a98bdd1dd9924a93fe93e7aab6431be97f3696edca1fac6b1bbacc6fcf4c1b",
    change: "the streaming layer tail's LayerNorms sum each row in sixteen slices",
    evidence: "Only `layerTail` changed (its LayerNorms' sums, now rounded in another order, as " +
      "the separate op's already were); its test against float64 and the separate ops passes. " +
      "No training or evaluation run opens a stream.",
  },
  {
    from: "sha256:54a98bdd1dd9924a93fe93e7aab6431be97f3696edca1fac6b1bbacc6fcf4c1b",
    to: "sha256:86f867b5af2ea84d4cf8df7adaebfea4648cc9be6c96025d7309ae87ae30baf2",
    change: "a loss check no longer waits for the GPU to finish the steps it covers",
    evidence: "`trainEpoch` starts each check's readback and looks at it at the next check (or " +
      "the epoch's end); no step, kernel or value changed, only when the host reads the losses " +
      "back. The trainer's tests (reproducibility, resuming loss for loss, the diverged-loss " +
      "error naming its step) pass.",
  },
  {
    from: "sha256:86f867b5af2ea84d4cf8df7adaebfea4648cc9be6c96025d7309ae87ae30baf2",
    to: "sha256:d90e5cc795209f64b53453e6e5ef224f456a6dfcd83b13ea4008d9a175f3ff65",
    change: "the small-product layout takes its sharing choices as one object",
    evidence: "`stagedProductLayout`'s arguments only changed form; the generated WGSL is the " +
      "same and the step's and the tail's tests pass unchanged.",
  },
  {
    from: "sha256:d90e5cc795209f64b53453e6e5ef224f456a6dfcd83b13ea4008d9a175f3ff65",
    to: "sha256:924469b9dfb44ad0b7a83ce791356858abdbec1ad041553d256497226745b81f",
    change: "the trainer's loss checks live in one class the efficiency measurement shares",
    evidence:
      "`LossChecks` (`models/training/loss_checks.ts`) does what `trainEpoch` did inline: " +
      "start a readback at each check and look at it at the next. No step or value changed; " +
      "its test and the trainer's pass.",
  },
  {
    from: "sha256:924469b9dfb44ad0b7a83ce791356858abdbec1ad041553d256497226745b81f",
    to: "sha256:67c606541dacac0c6ca6123a5427ca0706f1fd33e54281f481fed6f2818c52ec",
    change: "a stream's observe finds repeated users in one pass",
    evidence:
      "Only the host's bookkeeping of `SlotStream.observe` changed (a call's users checked " +
      "for repeats with a per-slot call number; the rounds of a call with repeats are made as " +
      "before); the streaming tests, which list users once and twice in a call, pass. No " +
      "training or evaluation run opens a stream.",
  },
  {
    from: "sha256:67c606541dacac0c6ca6123a5427ca0706f1fd33e54281f481fed6f2818c52ec",
    to: "sha256:2bc4d07944a709be10947de10fc3c4db4f1becd477ba79c5b97414c10ef4a1f2",
    change: "an epoch that ends at a loss check reads its losses back once",
    evidence: "`LossChecks.finish` takes the readback the last check started when it covers " +
      "every step, instead of starting another; the values are the same. Its tests and the " +
      "trainer's pass.",
  },
  {
    from: "sha256:2bc4d07944a709be10947de10fc3c4db4f1becd477ba79c5b97414c10ef4a1f2",
    to: "sha256:534cab2fc313f61cb02f0ca66f713beb043cf83ede9c6cfbe3cc6035c9d392cb",
    change: "the layer tail's constants are declared before the check that reads them",
    evidence: "`ops/dense/layer_tail.ts` only moved two constant declarations; no kernel text " +
      "or value changed, and its tests pass unchanged.",
  },
  {
    from: "sha256:534cab2fc313f61cb02f0ca66f713beb043cf83ede9c6cfbe3cc6035c9d392cb",
    to: "sha256:549d089d92ea7af225e78d897a7b0e58091e21afa38e20cbd973f1e262906b66",
    change: "the selective scan's backward kernels carry their own names in profiles",
    evidence: "Only the labels passed to `launch` changed (adjoint, states, parameters, " +
      "re-scan, local passes); no WGSL, buffer or value did, and the scan's tests pass.",
  },
  {
    from: "sha256:549d089d92ea7af225e78d897a7b0e58091e21afa38e20cbd973f1e262906b66",
    to: "sha256:c0ed34b73cb9a36ac42dfa56920541989cd3b73c96a8ecb91b8e6b2b487d52c2",
    change: "epilogues in matmul and row-mapped LayerNorms for the streaming step",
    evidence: "`matmul` gained an addend and GELU in its epilogue and LayerNorm a gather and a " +
      "scatter of its rows, used only by the streams' forward; training and evaluation call " +
      "neither, and the kernels they do run compute the same operations (only parentheses and " +
      "line breaks of the WGSL moved). Two epochs of Mamba4Rec, SASRec and SSD4Rec on the " +
      "first 4,000 users of Beauty (seed 7, lavapipe) gave the same losses, validation and " +
      "test metrics before and after, digit for digit; the fused forms equal the separate ops " +
      "bit for bit in their tests.",
  },
  {
    from: "sha256:c0ed34b73cb9a36ac42dfa56920541989cd3b73c96a8ecb91b8e6b2b487d52c2",
    to: "sha256:8e8a6317882591648ec8031f911c1df75baf68bcfd17331e5f8a3cc7a44c1c13",
    change: "the matmul epilogue names its vector GELU by an argument",
    evidence: "`epilogueValue` takes whether its value is a vector instead of its caller " +
      "rewriting the WGSL it returned; every generated kernel is the same text, and the " +
      "epilogue's tests pass.",
  },
  {
    from: "sha256:8e8a6317882591648ec8031f911c1df75baf68bcfd17331e5f8a3cc7a44c1c13",
    to: "sha256:152a716aeb2711305c9f6852c26ce5f13f85113de717c0f769d198a0d33315dc",
    change: "one predicate says whether an op would be recorded on the tape",
    evidence: "`recordsGradient(inputs)` replaces the same condition written out in `record`, " +
      "the GRU, the selective and SSD scans, `matmul` and LayerNorm; no kernel, buffer or " +
      "value changed, and their tests pass.",
  },
  {
    from: "sha256:152a716aeb2711305c9f6852c26ce5f13f85113de717c0f769d198a0d33315dc",
    to: "sha256:d7fdc6fc691ed2771963faf4284058b79746e5ddf94ab7123476692e62842c1d",
    change: "GELU's WGSL is one function that every kernel applying it calls",
    evidence: "`gelu_(x)` (`GELU_WGSL`, x·Φ(x)) replaces the same expression written in the " +
      "elementwise op, the matrix product's epilogue and the layer tail; two epochs of " +
      "Mamba4Rec, SASRec and SSD4Rec on Beauty's first 4,000 users (seed 7, lavapipe) gave the " +
      "same losses and metrics before and after.",
  },
  {
    from: "sha256:d7fdc6fc691ed2771963faf4284058b79746e5ddf94ab7123476692e62842c1d",
    to: "sha256:8829d384a7bbddb0f0bfe0a14994ab0527d642ad7e60b02309f0df0f7a465b73",
    change: "products with few output tiles and a short reduction take 32 × 32 tiles",
    evidence:
      "Without split-K every output of a product is one sum over K taken in order, whatever the " +
      "tiles, so the new tiles change no bit; on CPU implementations the planner's tiles are " +
      "unchanged.",
  },
  {
    from: "sha256:8829d384a7bbddb0f0bfe0a14994ab0527d642ad7e60b02309f0df0f7a465b73",
    to: "sha256:ef624665dd87043c35006a37fa77586bf28281a5cbf2f49d3b95a1a8081ac313",
    change: "the scan's state pass stages two channels at a time, not eight",
    evidence:
      "The chunk only sets how many channels are staged per barrier; every sum over channels or " +
      "states keeps its order. The scan's outputs and gradients with chunks of 8 and of 2 were " +
      "equal bit for bit (three shapes, with and without z, lavapipe), and two epochs of " +
      "Mamba4Rec with one and with two layers on Beauty's first 4,000 users (seed 7, lavapipe) " +
      "gave the same losses and metrics before and after.",
  },
  {
    from: "sha256:ef624665dd87043c35006a37fa77586bf28281a5cbf2f49d3b95a1a8081ac313",
    to: "sha256:e3f03ece62842bca73a1912a787bf2b9997599bb1865304115e982f61fd60820",
    change: "training waits for the GPU when the pool has destroyed more than its slack",
    evidence:
      "The runtime counts the bytes of pooled buffers destroyed since its last wait, and the " +
      "loss checks wait for the GPU between steps when that count passes the pool's slack. " +
      "Waiting changes no dispatch, buffer or value, only when the host encodes the next step.",
  },
  {
    from: "sha256:e3f03ece62842bca73a1912a787bf2b9997599bb1865304115e982f61fd60820",
    to: "sha256:e9a9c5084a90ed9a5c7bc18c0e51ac33fc0ce434061267679633b861b24adb21",
    change: "the state kernel's default chunk documented with what was measured",
    evidence: "A doc comment in ops/sequence/selective_scan/plan.ts only; no code changed.",
  },
  {
    from: "sha256:e9a9c5084a90ed9a5c7bc18c0e51ac33fc0ce434061267679633b861b24adb21",
    to: "sha256:158fc30af6758eec5f44655804c18250770d9b9a4765fa22ef159715a2e31474",
    change: "the product planner counts output tiles in one place",
    evidence:
      "planMatmul's split count and its few-tiles rule now call one function for the output " +
      "tiles of a tile configuration instead of writing the count twice; every plan is the one " +
      "it was.",
  },
  {
    from: "sha256:158fc30af6758eec5f44655804c18250770d9b9a4765fa22ef159715a2e31474",
    to: "sha256:cc80f41f9cc90ff0ac930102335c4486b5d96c0e12cf7405eab49f60879c2469",
    change:
      "kernels are checked against the device's storage-buffer limit; the re-scan steps aside past it",
    evidence:
      "The runtime refuses a kernel that binds more storage buffers than the device allows, " +
      "before compiling it, with its name; the device would refuse it anyway. selectiveScanAt's " +
      "re-scan is skipped only where its bindings exceed the limit; Mamba4Rec's binds 15, and " +
      "every device a record came from allows at least 32 (lavapipe 32), so every dispatch and " +
      "value is the one it was.",
  },
  {
    from: "sha256:cc80f41f9cc90ff0ac930102335c4486b5d96c0e12cf7405eab49f60879c2469",
    to: "sha256:1a2906b3a56dbc2665067faac70fb8c8a3162cd474bf04268c9013e6f555e9e4",
    change: "the SSD scans write their per-head partial sums into one tensor",
    evidence:
      "ssdScan's head-gradient kernel and ssdScanLast's backward wrote the partial sums of dA, " +
      "dD and d dtBias into three tensors and summed each with sumLeading; they now write them " +
      "side by side in one and sum it once, then split the columns. sumLeading sums each column " +
      "over the rows alone in a fixed tree, so every sum is the same bit for bit. SSD4Rec " +
      "trained 2 epochs on Beauty (first 3,000 users, seed 7, lavapipe) with 1 and 2 layers " +
      "before and after: identical losses, validation and test metrics.",
  },
  {
    from: "sha256:1a2906b3a56dbc2665067faac70fb8c8a3162cd474bf04268c9013e6f555e9e4",
    to: "sha256:4004b3988d55b44d9c5c0b5ef2fb9a6facc6f7c7d111143a0d2b69f98ada5dec",
    change: "the SSD4Rec step form keeps its per-head history in one pool",
    evidence:
      "biSsdStep's Δ ring, S ring and running ΣΔ are now rows of one pool, so the kernel binds " +
      "16 storage buffers, not 18. Only SSD4Rec's step form runs it, and no record trains or " +
      "evaluates through it.",
  },
  {
    from: "sha256:4004b3988d55b44d9c5c0b5ef2fb9a6facc6f7c7d111143a0d2b69f98ada5dec",
    to: "sha256:d97fb2fb79e222a05cb71d13f274833500f7723406954ded5be2fc7b9a3f8d6a",
    change: "the SSD scans sum their per-head partial sums through one helper",
    evidence:
      "ssdScan's and ssdScanLast's backwards both summed their side-by-side per-head partial " +
      "sums over the rows and split the columns; sumHeadParts in " +
      "ops/sequence/ssd_scan/prelude.ts now does it for both, with the same dispatches. SSD4Rec " +
      "trained 2 epochs on Beauty (first 3,000 users, seed 7, lavapipe) with 1 and 2 layers " +
      "before and after: identical losses, validation and test metrics.",
  },
];

/**
 * Whether `equivalence` keeps current a record of `model` trained with `trainConfig` (see
 * `notFor` and `notForModels`).
 */
export function coversRun(
  equivalence: SourceEquivalence,
  trainConfig: object | undefined,
  model?: string,
): boolean {
  if (model !== undefined && equivalence.notForModels?.includes(model)) return false;
  const notFor = Object.entries(equivalence.notFor ?? {});
  const settings = (trainConfig ?? {}) as Readonly<Record<string, unknown>>;
  return notFor.length === 0 || !notFor.every(([key, value]) => settings[key] === value);
}

/**
 * The chain of equivalences that leads from the hash `recorded` to the hash `current`: empty
 * when they are equal, `null` when none does.
 */
export function equivalenceChain(
  recorded: string,
  current: string,
  equivalences: readonly SourceEquivalence[] = SOURCE_EQUIVALENCES,
): SourceEquivalence[] | null {
  const chains = new Map<string, SourceEquivalence[]>([[recorded, []]]);
  const queue = [recorded];
  while (queue.length > 0) {
    const hash = queue.shift()!;
    const chain = chains.get(hash)!;
    if (hash === current) return chain;
    for (const step of equivalences) {
      if (step.from === hash && !chains.has(step.to)) {
        chains.set(step.to, [...chain, step]);
        queue.push(step.to);
      }
    }
  }
  return null;
}

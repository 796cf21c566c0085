// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

// Every custom error of Tessera's contracts, declared once: the TypeScript client decodes
// reverts by these names (src/chain/client/errors.ts).

// ModelRegistry
error ModelAlreadyRegistered(bytes32 modelRoot);
error UnknownModel(bytes32 modelRoot);
/// @notice The config leaf made of the given config and tokenizer hash is not leaf 0 of the model
///         root under the given path: the config lies about the model (docs/TRACE.md "Model root").
error BadConfigProof();

// Settlement: staking
error WrongRole(address account, uint8 role);
error StakeTooLow(address account, uint256 stake, uint256 minimum);
error NothingToWithdraw(address account);
error StillUnbonding(address account, uint64 availableAt);
error DisputeOpen(address account);
error AmountTooLarge(uint256 amount, uint256 available);
/// @notice The account's unlocked active stake (active minus what pending claims lock) is below
///         what the call needs: a claim's exposure, or the amount to unbond.
error StakeLocked(address account, uint256 unlocked, uint256 needed);

// Settlement: escrow and claims
error InsufficientEscrow(address client, uint256 balance, uint256 needed);
error NotTheProvider(address expected, address caller);
error BadSignature();
error RequestExpired(uint64 expiry);
error JobAlreadyClaimed(address client, uint64 nonce);
error TooManyTokens(uint256 tokens, uint256 maxTokens);
error EmptyBatch();
error UnknownBatch(uint256 batchId);
error BatchNotPending(uint256 batchId);
error ChallengeWindowOpen(uint256 batchId, uint64 finalizesAt);
error ChallengeWindowClosed(uint256 batchId);
error OnlyDisputeGame();
error AlreadyWired();
error TransferFailed();
error Reentrancy();

// DisputeGame
error BondMismatch(uint256 sent, uint256 required);
error NotInBatch();
error LeafAlreadyDisputed(uint256 batchId, uint256 leafIndex);
error UnknownGame(uint256 gameId);
error GameOver(uint256 gameId);
error NotYourTurn(uint256 gameId, address caller);
error WrongPhase(uint256 gameId, uint8 phase);
error ClockExpired(uint256 gameId);
error ClockRunning(uint256 gameId, uint64 remaining);
error BadReveal();
error BadChoice(uint256 choice);
error BadProof();
error BadPreimage();
/// @notice A weight's tensor leaf does not hash into the job's model root at that index.
error BadTensorProof(uint32 tensorIndex);
/// @notice A sub-trace with the wrong number of leaves for what the descent points at (the
///         machine's ops of a transition, an element's micro-steps).
error WrongLeafCount(uint64 lastLeaf, uint64 expected);
/// @notice A move of a kind the disputed position does not allow (e.g. stepOp on an op with element
///         programs, enterOp on a one-step op, a move of another level).
error WrongStepKind();
/// @notice A deployment parameter out of range (auditBps must be 1..10,000, reward shares <= 10,000).
error BadParameter(string name);

// Settlement: claims checked against the request and the registry (issue 7, inputs and outputs bound)
/// @notice A claim's nLayer is not the registered model's layer count.
error WrongLayerCount(uint32 nLayer, uint32 expected);
/// @notice A claim with no prompt token (the trace needs at least one position).
error EmptyPrompt();
/// @notice A claim with no output token.
error EmptyOutput();
// Settlement: delivery acknowledgements and reservations (issue 7, payment both sides can trust)
/// @notice The client's delivery acknowledgement covers no token, more tokens than the receipt,
///         or all of them with another output root.
error DeliveryMismatch(uint32 acknowledged, uint32 nOutput);
/// @notice The delivery acknowledgement is not signed by the request's client.
error NotAcknowledged(address client);
/// @notice The request already has a reservation.
error AlreadyReserved(bytes32 requestDigest);
/// @notice No reservation for this request digest.
error NotReserved(bytes32 requestDigest);
/// @notice A reservation is released only after its request expired.
error ReservationActive(bytes32 requestDigest, uint64 expiry);

// Machine (docs/MACHINE.md "Read openings"): the dispute machine's judge
/// @notice Opening i of a micro-step (or of a one-step op's proof) does not prove the value the
///         step reads from its agreed root.
error BadReadProof(uint256 i);
/// @notice The micro-state names no step of the transition: no such op, an op without element
///         programs, an element past the slot, or the element's final state.
error NoSuchStep(uint256 op, uint64 elem, uint64 step);
/// @notice A weight opening's tensor has another ggml type than the one proven for its name
///         (IMachine.proveWeightType), or a float read of a quantized tensor.
error WrongWeightType(uint32 proven, uint32 expected);
/// @notice A matmul op's weight type is not proven yet (IMachine.proveWeightType).
error UnknownWeightType(bytes32 modelRoot, bytes name);
/// @notice An arithmetic the dispute machine does not judge (docs/ARITHMETIC.md: tessera-arith/1 and
///         tessera-arith/2): refused at registration, and by the machine for a model root without one.
error UnknownArith(bytes32 arithVersion);
/// @notice A config the machine's programs do not cover (dims not multiples of 8, heads not a
///         multiple of kv heads, a matmul type without a block size).
error UnsupportedMachineShape();

// Settlement: audits (docs/CHAIN.md "Audits"; the audit contract's own errors are in IAudits.sol)
/// @notice Only the wired audit contract may call this.
error OnlyAudits();
/// @notice The job was slashed for withholding its transcript: it is settled, no game opens on it.
error JobFaulted(bytes32 requestDigest);

// DatasetRegistry and training records (docs/CHAIN.md "Data provenance")
/// @notice The dataset root is registered already (first come: its entry never changes).
error DatasetAlreadyRegistered(bytes32 root);
/// @notice No dataset is registered under this root.
error UnknownDataset(bytes32 root);
/// @notice A dataset registration with a bad field: `what` names it (root, manifestHash, licence, contributors).
error BadDataset(string what);
/// @notice Contributor `index` is the zero address, has a zero share, or is listed twice.
error BadContributor(uint256 index, address contributor);
/// @notice The contributors' shares sum to `sum` basis points, not 10,000.
error SharesNotWhole(uint256 sum);
/// @notice A training record with a bad field: `what` names it (manifestHash, runRoot, datasets, weights).
error BadTrainingRecord(string what);
/// @notice The model was registered without a training record.
error NoTrainingRecord(bytes32 modelRoot);

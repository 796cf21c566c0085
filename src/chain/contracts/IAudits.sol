// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Settlement} from "./Settlement.sol";
import {IMachine} from "./IMachine.sol";

// The audit protocol's custom errors, declared beside its interface so that the client and the
// auditor node decode them by name (docs/CHAIN.md "Audits").

/// @notice `round` is not the round this draw must use (`expected`): nobody picks the round.
error WrongRound(uint64 round, uint64 expected);
/// @notice The batch was drawn already.
error AlreadyDrawn(uint256 batchId);
/// @notice The batch has not been drawn yet.
error NotDrawn(uint256 batchId);
/// @notice The job is not audited (no assignment), or its assignment is in another state.
error WrongAuditState(uint256 batchId, uint256 index, uint8 status);
/// @notice Only the drawn auditor of the job may do this.
error NotTheAuditor(address auditor, address caller);
/// @notice A deadline of the audit (commit, reveal, canary, answer) has passed, or has not yet.
error AuditDeadline(uint64 deadline);
/// @notice The revealed root and salt do not hash to the commitment.
error BadCommitment();
/// @notice The trace leaf does not sit at the drawn index under the job's trace root, or the
///         revealed root is not the job's claimed trace root.
error BadLeafProof(uint64 leafIndex);
/// @notice The game named by an "invalid" verdict is not this auditor's game on this job.
error NotYourGame(uint256 gameId);
/// @notice The job is not eligible for a forced audit (below the value threshold, not requested
///         by its client before the draw) or was already assigned.
error NotForced(uint256 batchId, uint256 index);
/// @notice No canary was planted for this job by its client before the claim, or the verdict it
///         would catch is not a "valid" one.
error NoCanary();
/// @notice The canary commitment exists already.
error CanaryExists(bytes32 commitment);
/// @notice The auditor list is full (MAX_AUDITORS), or the account is no staked auditor.
error AuditorList(address account);
/// @notice No eligible auditor to draw.
error NoAuditors();
/// @notice The posted transcript does not match the job's prompt root or params hash.
error TranscriptMismatch();
/// @notice An availability challenge already exists for the job, none exists, or it is answered.
error ChallengeState(uint256 batchId, uint256 index, uint8 status);
/// @notice The job is (or was) under dispute: its settlement is the dispute game's.
error JobUnderDispute(uint256 batchId, uint256 index);
/// @notice The redraws of this job are spent, or a redraw's deadlines would pass the challenge window.
error TooLate(uint256 batchId, uint256 index);
/// @notice A bond or payment of the wrong size.
error WrongBond(uint256 sent, uint256 required);

/// @title IAudits: drawn, paid, checked audits of claimed jobs
/// @notice After a batch is claimed, a beacon round fixed by the claim's time draws which of its
///         jobs are audited (probability p = Settlement's auditBps per job; always above a value
///         threshold or when the client asked) and, stake-weighted, which registered auditor audits
///         each. The auditor commits to the trace root it computed, then reveals: "valid" proves the
///         trace leaf at an index drawn from the seed and its commitment; "invalid" names its own
///         dispute game on the job. Paid premium / p per completed audit from the pool every claim
///         funds (a forced audit's caller pays that fee in). Canaries planted before a claim cost a lazy approver its bond. An availability
///         challenge makes a provider post the job's transcript on chain or be slashed. Deadlines:
///         all inside Settlement's challenge window. Spec: docs/CHAIN.md "Audits".
interface IAudits {
    /// @notice Parameters, fixed at deployment (seconds and wei).
    struct Params {
        uint64 beaconDelay; // the draw uses round roundAt(claimedAt + beaconDelay); >= the beacon's period
        uint64 commitWindow; // from the round's time to the commit deadline
        uint64 revealWindow; // from the commit deadline to the reveal deadline
        uint64 canaryWindow; // from the reveal deadline to the canary deadline (then settle)
        uint64 answerWindow; // an availability challenge waits this long for the transcript
        uint32 maxRedraws; // no-shows redrawn at most this many times per job
        uint128 auditorBond; // sent with each commitment
        uint128 challengeBond; // an availability challenge by anyone but the job's drawn auditor
        uint128 valueThreshold; // jobs whose amount is at least this can be force-audited, the caller paying the fee (0: none)
    }

    /// @notice A claimed job as its batch leaf commits it: the claim item, the client the
    ///         request's signature recovers, the billed amount and the leaf's path under the batch root.
    struct JobProof {
        Settlement.ClaimItem item;
        address client;
        uint128 amount;
        bytes32[] proof;
    }

    /// @notice One audited job. `status`: DRAWN, COMMITTED, VALID, INVALID (revealed), PAID,
    ///         CAUGHT (a canary caught a "valid"), FORFEITED (committed, never revealed).
    ///         `why`: 1 drawn at rate p, 2 value threshold, 3 the client asked. Deadlines:
    ///         commit = start + commitWindow, reveal = commit + revealWindow, canary = reveal + canaryWindow.
    struct Assignment {
        address auditor;
        uint8 status;
        uint8 attempt; // 0 first draw, then one per redraw
        uint8 why;
        uint64 start; // the time of the beacon round that drew it
        bytes32 seed; // this job's seed: keccak(batch seed, index, attempt); the leaf index derives from it
        bytes32 commitment; // keccak256(abi.encode(traceRoot, salt, auditor))
        uint128 fee; // set at reveal: premium / p of the job (paid at settle, capped by the pool)
        uint128 bond;
    }

    /// @notice A batch's draw.
    struct Draw {
        bytes32 seed; // keccak256(abi.encode(beacon randomness, batchId))
        uint64 round;
        uint64 drawnAt;
        uint64 drawnBlock; // an audit request counts if made in an earlier block
        uint32 audited;
    }

    /// @notice An availability challenge. `status` 1 open, 2 answered, 3 the provider was slashed.
    struct Challenge {
        address challenger;
        uint8 status;
        uint64 deadline;
        uint128 bond;
        uint128 amount;
        address client;
        bytes32 requestDigest;
        bytes32 promptRoot;
        bytes32 paramsHash;
    }

    event AuditorRegistered(address indexed account, uint64 weightGwei);
    event AuditorRemoved(address indexed account);
    event PoolFunded(uint256 indexed batchId, address indexed from, uint256 amount);
    event AuditRequested(bytes32 indexed requestDigest, address indexed client);
    event CanaryPlanted(bytes32 indexed commitment, address indexed planter);
    event Drawn(uint256 indexed batchId, uint64 round, bytes32 seed, uint32 audited);
    /// @notice An auditor was drawn for job `index` of `batchId`: what an auditor node follows.
    event AuditorDrawn(uint256 indexed batchId, uint256 index, address indexed auditor, uint8 why, uint8 attempt, uint64 commitDeadline);
    event Committed(uint256 indexed batchId, uint256 index, address indexed auditor, bytes32 commitment);
    event Revealed(uint256 indexed batchId, uint256 index, address indexed auditor, bool valid, uint128 fee);
    event CanaryCaught(uint256 indexed batchId, uint256 index, address indexed auditor, address indexed planter, uint256 reward, uint256 burned);
    event AuditSettled(uint256 indexed batchId, uint256 index, address indexed auditor, uint256 fee, uint256 bond);
    event AuditForfeited(uint256 indexed batchId, uint256 index, address indexed auditor, uint256 bond);
    event AvailabilityChallenged(uint256 indexed batchId, uint256 index, address indexed challenger, bytes32 requestDigest, uint64 deadline);
    /// @notice The transcript, posted on chain: the prompt's token ids (u32 little-endian) and sampling.
    event TranscriptPosted(uint256 indexed batchId, uint256 index, bytes32 indexed requestDigest, bytes prompt, IMachine.Sampling params);
    event WithholdingSlashed(uint256 indexed batchId, uint256 index, address indexed challenger);
    event Withdrawn(address indexed account, uint256 amount);

    // ---- auditors, requests, canaries
    function registerAuditor() external;
    function deregisterAuditor() external;
    function prune(address account) external;
    function auditors() external view returns (address[] memory accounts, uint64[] memory weightsGwei);
    function requestAudit(bytes32 requestDigest) external;
    function plantCanary(bytes32 commitment) external;
    function fund(uint256 batchId) external payable;

    // ---- draws
    function designatedRound(uint256 batchId) external view returns (uint64);
    function draw(uint256 batchId, uint64 round, bytes calldata sig) external;
    function drawForced(uint256 batchId, uint256 index, JobProof calldata job) external payable;
    function redrawRound(uint256 batchId, uint256 index) external view returns (uint64);
    function redraw(uint256 batchId, uint256 index, uint64 round, bytes calldata sig) external;

    // ---- commit, reveal, canaries, payment
    function commit(uint256 batchId, uint256 index, bytes32 commitment) external payable;
    function revealValid(uint256 batchId, uint256 index, JobProof calldata job, bytes32 salt, bytes32 leaf, bytes32[] calldata leafProof) external;
    function revealInvalid(uint256 batchId, uint256 index, bytes32 traceRoot, bytes32 salt, uint256 gameId) external;
    function revealCanary(uint256 batchId, uint256 index, JobProof calldata job, bytes32 salt) external;
    function settle(uint256 batchId, uint256 index) external;
    function withdraw() external;

    // ---- availability
    function challengeAvailability(uint256 batchId, uint256 index, JobProof calldata job) external payable;
    function answerAvailability(uint256 batchId, uint256 index, bytes calldata prompt, IMachine.Sampling calldata params) external;
    function claimWithholding(uint256 batchId, uint256 index) external;

    // ---- views
    function getParams() external view returns (Params memory);
    function drawOf(uint256 batchId) external view returns (Draw memory);
    function assignmentOf(uint256 batchId, uint256 index) external view returns (Assignment memory);
    function challengeOf(uint256 batchId, uint256 index) external view returns (Challenge memory);
    /// @notice The trace leaf a "valid" reveal must prove: keccak(seed, commitment) mod nLeaves.
    function leafIndexOf(uint256 batchId, uint256 index, uint64 nLeaves) external view returns (uint64);
    function isDrawnAtRate(uint256 batchId, uint256 index) external view returns (bool);
    function commitmentOf(bytes32 traceRoot, bytes32 salt, address auditor) external pure returns (bytes32);
    function canaryCommitment(bytes32 requestDigest, bytes32 salt, address planter) external pure returns (bytes32);
    function owedTo(address account) external view returns (uint256);
    function totalPool() external view returns (uint256);
    function totalBonds() external view returns (uint256);
    function totalOwed() external view returns (uint256);
    function totalBurned() external view returns (uint256);
}

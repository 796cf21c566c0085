// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import "./Errors.sol";
import "./IAudits.sol";
import {IBeacon} from "./IBeacon.sol";
import {IMachine} from "./IMachine.sol";
import {Settlement} from "./Settlement.sol";
import {DisputeGame} from "./DisputeGame.sol";
import {Bisection} from "./Bisection.sol";
import {MerkleProof} from "./lib/MerkleProof.sol";
import {MerkleRoot} from "./MerkleRoot.sol";

/// @title Audits: which claimed jobs are replayed, by whom, and what an audit pays
/// @notice See IAudits and docs/CHAIN.md "Audits". Randomness comes only from the beacon round
///         fixed by the claim's time (never PREVRANDAO or a block hash).
/// @dev Value accounting: address(this).balance == pool + bonds + owed + burned (totalPool ..
///      totalBurned). Auditor weights are snapshots of Settlement stake taken at registration
///      (refreshed by registering again); an auditor registered at or after the time of the round
///      that draws (or redraws) a job is not drawn for it, so nobody registers after seeing a seed.
///      Pool solvency: every job pays premium = p * fee in; a job drawn at rate p is paid fee out, so
///      random audits cost the pool what they bring in expectation; a forced audit brings its fee.
contract Audits is IAudits {
    uint8 internal constant DRAWN = 1;
    uint8 internal constant COMMITTED = 2;
    uint8 internal constant VALID = 3;
    uint8 internal constant INVALID = 4;
    uint8 internal constant PAID = 5;
    uint8 internal constant CAUGHT = 6;
    uint8 internal constant FORFEITED = 7;

    uint8 internal constant WHY_RATE = 1;
    uint8 internal constant WHY_VALUE = 2;
    uint8 internal constant WHY_REQUEST = 3;

    uint8 internal constant OPEN = 1;
    uint8 internal constant ANSWERED = 2;
    uint8 internal constant SLASHED = 3;

    /// @notice At most this many registered auditors (a draw reads them all).
    uint256 public constant MAX_AUDITORS = 64;

    Settlement public immutable settlement;
    DisputeGame public immutable disputeGame;
    IBeacon public immutable beacon;
    uint64 internal immutable CHALLENGE_WINDOW;
    uint32 internal immutable AUDIT_BPS;
    uint32 internal immutable PREMIUM_BPS;
    Params internal params;

    /// @dev One slot per auditor: account, weight (gwei of stake at registration), registration time.
    struct Auditor {
        address account;
        uint64 weight;
        uint32 since;
    }

    Auditor[] internal list;
    mapping(uint256 => Draw) internal draws;
    /// @dev By keccak256(abi.encode(batchId, index)).
    mapping(bytes32 => Assignment) internal assignments;
    mapping(bytes32 => Challenge) internal challenges;
    /// @notice Audit requests: the block of the first request, by keccak256(abi.encode(requestDigest,
    ///         requester)), so nobody can overwrite or move a client's request.
    mapping(bytes32 => uint64) public requestedAtBlock;
    /// @notice Canary commitments: the time they were planted (0: none).
    mapping(bytes32 => uint64) public canaryPlantedAt;
    mapping(address => uint256) internal oweds;

    uint128 internal pool;
    uint128 internal bonds;
    uint128 internal owed;
    uint128 internal burned;

    /// @notice Deploys against Settlement (which then `wireAudits` this), its dispute game and a beacon.
    constructor(Settlement settlement_, DisputeGame game_, IBeacon beacon_, Params memory p) {
        Settlement.Params memory sp = settlement_.getParams();
        uint64 period = beacon_.period();
        // INVARIANT: the draw's round is due strictly after the claim (roundAt(t) is due in
        // (t - period, t]), so nobody knows the randomness when the batch is claimed.
        if (p.beaconDelay < period) revert BadParameter("beaconDelay");
        // INVARIANT: a first draw's deadlines all fall inside the batch's challenge window, so a
        // mismatch an audit finds can still open a game, and a slash for withholding still lands.
        if (uint256(p.beaconDelay) + p.commitWindow + p.revealWindow + p.canaryWindow >= sp.challengeWindow) revert BadParameter("windows");
        if (uint256(p.beaconDelay) + p.answerWindow >= sp.challengeWindow) revert BadParameter("answerWindow");
        if (p.commitWindow == 0 || p.revealWindow == 0) revert BadParameter("commitWindow");
        settlement = settlement_;
        disputeGame = game_;
        beacon = beacon_;
        CHALLENGE_WINDOW = sp.challengeWindow;
        AUDIT_BPS = sp.auditBps;
        PREMIUM_BPS = sp.premiumBps;
        params = p;
    }

    // ---------------------------------------------------------------- auditors, requests, canaries

    /// @notice Registers (or refreshes) the caller as an auditor, weighted by its active auditor
    ///         stake in Settlement now. Not drawn for batches drawn before this call's block.
    function registerAuditor() external {
        uint64 w = _weight(msg.sender);
        // INVARIANT: only staked auditors above the minimum are drawn.
        if (w == 0) revert AuditorList(msg.sender);
        uint256 n = list.length;
        for (uint256 i = 0; i < n; i++) {
            if (list[i].account == msg.sender) {
                list[i] = Auditor(msg.sender, w, uint32(block.timestamp));
                emit AuditorRegistered(msg.sender, w);
                return;
            }
        }
        // INVARIANT: a draw reads every auditor: the list stays bounded.
        if (n >= MAX_AUDITORS) revert AuditorList(msg.sender);
        list.push(Auditor(msg.sender, w, uint32(block.timestamp)));
        emit AuditorRegistered(msg.sender, w);
    }

    /// @notice Removes the caller from the auditor list.
    function deregisterAuditor() external {
        if (!_remove(msg.sender)) revert AuditorList(msg.sender);
    }

    /// @notice Anyone: removes an auditor whose stake fell below the auditor minimum.
    function prune(address account) external {
        // INVARIANT: a staked auditor stays listed unless it leaves itself.
        if (_weight(account) != 0 || !_remove(account)) revert AuditorList(account);
    }

    /// @inheritdoc IAudits
    function auditors() external view returns (address[] memory accounts, uint64[] memory weightsGwei) {
        uint256 n = list.length;
        accounts = new address[](n);
        weightsGwei = new uint64[](n);
        for (uint256 i = 0; i < n; i++) (accounts[i], weightsGwei[i]) = (list[i].account, list[i].weight);
    }

    /// @notice Client: asks that its job `requestDigest` be audited whatever the draw (it must be
    ///         asked in a block before the batch's draw; `drawForced` then assigns it).
    function requestAudit(bytes32 requestDigest) external {
        bytes32 k = keccak256(abi.encode(requestDigest, msg.sender));
        if (requestedAtBlock[k] == 0) requestedAtBlock[k] = uint64(block.number);
        emit AuditRequested(requestDigest, msg.sender);
    }

    /// @notice Plants a canary: commitment = canaryCommitment(requestDigest, salt, msg.sender) of a
    ///         deliberately faulty job the caller runs as client; only counts if planted before the
    ///         job's claim.
    function plantCanary(bytes32 commitment) external {
        // INVARIANT: a canary's time is the first planting (it cannot be moved later or earlier).
        if (canaryPlantedAt[commitment] != 0) revert CanaryExists(commitment);
        canaryPlantedAt[commitment] = uint64(block.timestamp);
        emit CanaryPlanted(commitment, msg.sender);
    }

    /// @notice Adds msg.value to the audit pool (Settlement sends every claim's premiums here).
    function fund(uint256 batchId) external payable {
        pool += uint128(msg.value);
        emit PoolFunded(batchId, msg.sender, msg.value);
    }

    // ---------------------------------------------------------------- draws

    /// @notice The one beacon round that draws `batchId`: roundAt(claimedAt + beaconDelay).
    function designatedRound(uint256 batchId) public view returns (uint64) {
        Settlement.Batch memory b = settlement.getBatch(batchId);
        return beacon.roundAt(b.finalizesAt - CHALLENGE_WINDOW + params.beaconDelay);
    }

    /// @notice Anyone: draws batch `batchId` with the beacon's signature of its designated round.
    ///         Job i is audited iff uint(keccak(seed, i)) % 10_000 < auditBps; each audited job's
    ///         auditor is drawn stake-weighted.
    function draw(uint256 batchId, uint64 round, bytes calldata sig) external {
        Draw storage dr = draws[batchId];
        // INVARIANT: a batch is drawn once, with exactly its designated round's verified randomness.
        if (dr.drawnAt != 0) revert AlreadyDrawn(batchId);
        Settlement.Batch memory b = settlement.getBatch(batchId);
        uint64 expected = beacon.roundAt(b.finalizesAt - CHALLENGE_WINDOW + params.beaconDelay);
        if (round != expected) revert WrongRound(round, expected);
        bytes32 seed = keccak256(abi.encode(beacon.randomness(round, sig), batchId));
        uint64 start = beacon.timeOf(round);
        dr.seed = seed;
        dr.round = round;
        dr.drawnAt = uint64(block.timestamp);
        dr.drawnBlock = uint64(block.number);
        Auditor[] memory all = _eligible(start);
        uint32 audited;
        for (uint256 i = 0; i < b.count; i++) {
            if (!_atRate(seed, i)) continue;
            _assign(batchId, i, all, seed, 0, WHY_RATE, start);
            audited++;
        }
        dr.audited = audited;
        emit Drawn(batchId, round, seed, audited);
    }

    /// @notice Anyone: assigns an auditor to a job the rate did not draw but that must be audited:
    ///         its amount is at least the value threshold, or its client asked before the draw. The
    ///         caller pays the audit's fee (premium / p, exactly, into the pool): the job's own
    ///         premium already paid for its chance p of a random audit, so a forced audit paid from
    ///         it would be paid 1 / p times over by the pool and drain it.
    function drawForced(uint256 batchId, uint256 index, JobProof calldata job) external payable {
        Draw storage dr = draws[batchId];
        if (dr.drawnAt == 0) revert NotDrawn(batchId);
        bytes32 rd = _prove(batchId, index, job);
        bytes32 key = _key(batchId, index);
        uint8 why = params.valueThreshold != 0 && job.amount >= params.valueThreshold ? WHY_VALUE : 0;
        uint64 asked = requestedAtBlock[keccak256(abi.encode(rd, job.client))];
        if (why == 0 && asked != 0 && asked < dr.drawnBlock) why = WHY_REQUEST;
        // INVARIANT: only threshold or requested jobs, each assigned once.
        if (why == 0 || assignments[key].status != 0) revert NotForced(batchId, index);
        // INVARIANT: a forced audit brings its own fee: the pool pays random audits only from premiums.
        uint128 fee = _fee(job.amount);
        if (msg.value != fee) revert WrongBond(msg.value, fee);
        pool += fee;
        emit PoolFunded(batchId, msg.sender, fee);
        uint64 start = beacon.timeOf(dr.round);
        _assign(batchId, index, _eligible(start), dr.seed, 0, why, start);
        dr.audited++;
    }

    /// @notice The round a redraw of job `index` must use: roundAt(commit deadline + beaconDelay).
    function redrawRound(uint256 batchId, uint256 index) public view returns (uint64) {
        Assignment storage a = assignments[_key(batchId, index)];
        return beacon.roundAt(a.start + params.commitWindow + params.beaconDelay);
    }

    /// @notice Anyone: the drawn auditor did not commit by its deadline; draws another with the
    ///         next designated round. The no-show loses only the fee (it bonded nothing yet).
    function redraw(uint256 batchId, uint256 index, uint64 round, bytes calldata sig) external {
        Assignment storage a = assignments[_key(batchId, index)];
        uint64 start = _redrawStart(batchId, index, a, round);
        bytes32 seed = keccak256(abi.encode(beacon.randomness(round, sig), batchId));
        _assign(batchId, index, _eligible(start), seed, a.attempt + 1, a.why, start);
    }

    /// @dev The checks of a redraw; returns the time of its round.
    function _redrawStart(uint256 batchId, uint256 index, Assignment storage a, uint64 round) internal view returns (uint64 start) {
        // INVARIANT: only an uncommitted assignment past its commit deadline, with the one round
        // fixed by that deadline, a bounded number of times, and never past the challenge window.
        if (a.status != DRAWN) revert WrongAuditState(batchId, index, a.status);
        uint64 deadline = a.start + params.commitWindow;
        if (block.timestamp <= deadline) revert AuditDeadline(deadline);
        uint64 expected = beacon.roundAt(deadline + params.beaconDelay);
        if (round != expected) revert WrongRound(round, expected);
        if (a.attempt >= params.maxRedraws) revert TooLate(batchId, index);
        start = beacon.timeOf(round);
        if (uint256(start) + params.commitWindow + params.revealWindow + params.canaryWindow >= settlement.getBatch(batchId).finalizesAt) {
            revert TooLate(batchId, index);
        }
    }

    // ---------------------------------------------------------------- commit, reveal, canaries

    /// @notice Drawn auditor: commits to the trace root it computed, with the auditor bond.
    function commit(uint256 batchId, uint256 index, bytes32 commitment) external payable {
        Assignment storage a = assignments[_key(batchId, index)];
        // INVARIANT: the drawn auditor, once, before its deadline, bonded.
        if (a.status != DRAWN) revert WrongAuditState(batchId, index, a.status);
        if (a.auditor != msg.sender) revert NotTheAuditor(a.auditor, msg.sender);
        uint64 deadline = a.start + params.commitWindow;
        if (block.timestamp > deadline) revert AuditDeadline(deadline);
        if (msg.value != params.auditorBond) revert WrongBond(msg.value, params.auditorBond);
        // INVARIANT: only an auditor still staked above the minimum audits (its weight was a snapshot).
        if (_weight(msg.sender) == 0) revert AuditorList(msg.sender);
        a.status = COMMITTED;
        a.commitment = commitment;
        a.bond = uint128(msg.value);
        bonds += uint128(msg.value);
        emit Committed(batchId, index, msg.sender, commitment);
    }

    /// @notice Auditor: "valid". The committed root is the job's claimed trace root, and the trace
    ///         leaf at leafIndexOf (drawn from the seed and the commitment) sits under it.
    function revealValid(uint256 batchId, uint256 index, JobProof calldata job, bytes32 salt, bytes32 leaf, bytes32[] calldata leafProof) external {
        Assignment storage a = _revealing(batchId, index);
        _prove(batchId, index, job);
        bytes32 root = job.item.traceRoot;
        // INVARIANT: no pay without the trace: the committed root is the claimed one and the
        // auditor holds the leaf the seed picked after it committed.
        if (keccak256(abi.encode(root, salt, msg.sender)) != a.commitment) revert BadCommitment();
        uint64 li = _leafIndex(a, Bisection.traceLeafCount(job.item.nPrompt, job.item.nOutput, job.item.nLayer));
        if (!MerkleProof.verify(root, leaf, li, leafProof)) revert BadLeafProof(li);
        a.status = VALID;
        a.fee = _fee(job.amount);
        emit Revealed(batchId, index, msg.sender, true, a.fee);
    }

    /// @notice Auditor: "invalid". Its commitment opens (to a root other than the claim's, which
    ///         the game it opened on this job disputes) and `gameId` is its own game on the job.
    function revealInvalid(uint256 batchId, uint256 index, bytes32 traceRoot, bytes32 salt, uint256 gameId) external {
        Assignment storage a = _revealing(batchId, index);
        if (keccak256(abi.encode(traceRoot, salt, msg.sender)) != a.commitment) revert BadCommitment();
        DisputeGame.Game memory g = disputeGame.getGame(gameId);
        // INVARIANT: an "invalid" verdict is backed by this auditor's own bond in a game on this job.
        if (g.challenger != msg.sender || g.batchId != batchId || g.jobIndex != index || g.traceRoot == traceRoot) revert NotYourGame(gameId);
        a.status = INVALID;
        a.fee = _fee(g.jobAmount);
        emit Revealed(batchId, index, msg.sender, false, a.fee);
    }

    /// @notice Planter: job `index` was its canary (planted before the claim, as the job's client)
    ///         and the drawn auditor called it "valid": the auditor's bond is taken. The planter gets
    ///         at most the job's premium (what the canary cost it beyond what its own provider
    ///         account earns back), the rest is burned: planting canaries never profits.
    function revealCanary(uint256 batchId, uint256 index, JobProof calldata job, bytes32 salt) external {
        Assignment storage a = assignments[_key(batchId, index)];
        if (a.status != VALID) revert NoCanary();
        uint64 deadline = a.start + params.commitWindow + params.revealWindow + params.canaryWindow;
        if (block.timestamp > deadline) revert AuditDeadline(deadline);
        bytes32 rd = _prove(batchId, index, job);
        uint64 planted = canaryPlantedAt[keccak256(abi.encode(rd, salt, msg.sender))];
        Settlement.Batch memory b = settlement.getBatch(batchId);
        // INVARIANT: the canary was committed by the job's own client strictly before the claim.
        if (msg.sender != job.client || planted == 0 || planted >= b.finalizesAt - CHALLENGE_WINDOW) revert NoCanary();
        uint256 bond = a.bond;
        uint256 premium = uint256(job.amount) * PREMIUM_BPS / 10_000;
        uint256 reward = premium < bond ? premium : bond;
        a.status = CAUGHT;
        bonds -= uint128(bond);
        owed += uint128(reward);
        burned += uint128(bond - reward);
        oweds[msg.sender] += reward;
        emit CanaryCaught(batchId, index, a.auditor, msg.sender, reward, bond - reward);
    }

    /// @notice Anyone, after the canary deadline: pays a revealed audit its fee (capped by the pool)
    ///         and bond, or forfeits the bond of a commitment never revealed.
    function settle(uint256 batchId, uint256 index) external {
        Assignment storage a = assignments[_key(batchId, index)];
        uint64 deadline = a.start + params.commitWindow + params.revealWindow + params.canaryWindow;
        if (a.status == COMMITTED) {
            uint64 rdl = a.start + params.commitWindow + params.revealWindow;
            if (block.timestamp <= rdl) revert AuditDeadline(rdl);
            a.status = FORFEITED;
            bonds -= a.bond;
            burned += a.bond;
            emit AuditForfeited(batchId, index, a.auditor, a.bond);
            return;
        }
        // INVARIANT: paid once, only for a revealed verdict, after the canary window.
        if (a.status != VALID && a.status != INVALID) revert WrongAuditState(batchId, index, a.status);
        if (block.timestamp <= deadline) revert AuditDeadline(deadline);
        uint128 fee = a.fee < pool ? a.fee : pool;
        a.status = PAID;
        pool -= fee;
        bonds -= a.bond;
        owed += fee + a.bond;
        oweds[a.auditor] += fee + a.bond;
        emit AuditSettled(batchId, index, a.auditor, fee, a.bond);
    }

    /// @notice Withdraws what the caller is owed (fees, bonds, rewards).
    function withdraw() external {
        uint256 amount = oweds[msg.sender];
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        oweds[msg.sender] = 0;
        owed -= uint128(amount);
        emit Withdrawn(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    // ---------------------------------------------------------------- availability

    /// @notice The job's drawn auditor (no bond), or anyone with challengeBond: the job's
    ///         transcript must be posted on chain (answerAvailability) within answerWindow.
    function challengeAvailability(uint256 batchId, uint256 index, JobProof calldata job) external payable {
        bytes32 rd = _prove(batchId, index, job);
        bytes32 key = _key(batchId, index);
        Challenge storage c = challenges[key];
        if (c.status != 0) revert ChallengeState(batchId, index, c.status);
        uint128 bond = assignments[key].auditor == msg.sender ? 0 : params.challengeBond;
        if (msg.value != bond) revert WrongBond(msg.value, bond);
        Settlement.Batch memory b = settlement.getBatch(batchId);
        uint64 deadline = uint64(block.timestamp) + params.answerWindow;
        // INVARIANT: the slash for silence lands inside the window (a pending batch, not yet final).
        if (b.status != 1 || deadline >= b.finalizesAt) revert TooLate(batchId, index);
        challenges[key] = Challenge(msg.sender, OPEN, deadline, bond, job.amount, job.client, rd, job.item.req.promptRoot, job.item.req.paramsHash);
        bonds += bond;
        emit AvailabilityChallenged(batchId, index, msg.sender, rd, deadline);
    }

    /// @notice Anyone (the provider, the client): posts the transcript, the prompt's token ids as
    ///         u32 little-endian bytes and the sampling params, checked against the signed request's
    ///         promptRoot (vector root) and paramsHash, and emitted for the auditor. The challenge
    ///         bond, if any, goes to the answerer.
    function answerAvailability(uint256 batchId, uint256 index, bytes calldata prompt, IMachine.Sampling calldata sampling) external {
        Challenge storage c = challenges[_key(batchId, index)];
        if (c.status != OPEN) revert ChallengeState(batchId, index, c.status);
        if (block.timestamp > c.deadline) revert AuditDeadline(c.deadline);
        // INVARIANT: only the transcript the client signed closes the challenge.
        if (prompt.length % 4 != 0 || _vectorRoot(prompt) != c.promptRoot || sha256(abi.encode(sampling)) != c.paramsHash) revert TranscriptMismatch();
        c.status = ANSWERED;
        uint128 bond = c.bond;
        if (bond != 0) {
            bonds -= bond;
            owed += bond;
            oweds[msg.sender] += bond;
        }
        emit TranscriptPosted(batchId, index, c.requestDigest, prompt, sampling);
    }

    /// @notice Anyone, after an unanswered challenge's deadline and inside the batch's window: the
    ///         job counts as a fraud. Settlement refunds it, slashes the provider as for a lost
    ///         dispute and owes the challenger the reward; the challenger's bond comes back.
    function claimWithholding(uint256 batchId, uint256 index) external {
        Challenge storage c = challenges[_key(batchId, index)];
        if (c.status != OPEN) revert ChallengeState(batchId, index, c.status);
        if (block.timestamp <= c.deadline) revert AuditDeadline(c.deadline);
        (uint8 state, uint32 open,) = disputeGame.jobs(keccak256(abi.encode(batchId, index)));
        // INVARIANT: a job under a game (or lost in one) is the game's to settle.
        if (open != 0 || state == 3) revert JobUnderDispute(batchId, index);
        c.status = SLASHED;
        uint128 bond = c.bond;
        if (bond != 0) {
            bonds -= bond;
            owed += bond;
            oweds[c.challenger] += bond;
        }
        settlement.onAuditFault(batchId, c.requestDigest, c.client, c.amount, c.challenger);
        emit WithholdingSlashed(batchId, index, c.challenger);
    }

    // ---------------------------------------------------------------- views

    function getParams() external view returns (Params memory) {
        return params;
    }

    function drawOf(uint256 batchId) external view returns (Draw memory) {
        return draws[batchId];
    }

    function assignmentOf(uint256 batchId, uint256 index) external view returns (Assignment memory) {
        return assignments[_key(batchId, index)];
    }

    function challengeOf(uint256 batchId, uint256 index) external view returns (Challenge memory) {
        return challenges[_key(batchId, index)];
    }

    function leafIndexOf(uint256 batchId, uint256 index, uint64 nLeaves) external view returns (uint64) {
        return _leafIndex(assignments[_key(batchId, index)], nLeaves);
    }

    function isDrawnAtRate(uint256 batchId, uint256 index) external view returns (bool) {
        Draw storage dr = draws[batchId];
        return dr.drawnAt != 0 && _atRate(dr.seed, index);
    }

    function commitmentOf(bytes32 traceRoot, bytes32 salt, address auditor) external pure returns (bytes32) {
        return keccak256(abi.encode(traceRoot, salt, auditor));
    }

    function canaryCommitment(bytes32 requestDigest, bytes32 salt, address planter) external pure returns (bytes32) {
        return keccak256(abi.encode(requestDigest, salt, planter));
    }

    function owedTo(address account) external view returns (uint256) {
        return oweds[account];
    }

    function totalPool() external view returns (uint256) {
        return pool;
    }

    function totalBonds() external view returns (uint256) {
        return bonds;
    }

    function totalOwed() external view returns (uint256) {
        return owed;
    }

    function totalBurned() external view returns (uint256) {
        return burned;
    }

    // ---------------------------------------------------------------- internals

    function _key(uint256 batchId, uint256 index) internal pure returns (bytes32) {
        return keccak256(abi.encode(batchId, index));
    }

    function _atRate(bytes32 seed, uint256 i) internal view returns (bool) {
        return uint256(keccak256(abi.encode(seed, i))) % 10_000 < AUDIT_BPS;
    }

    /// @dev The auditor fee of a job: its premium / p = amount * premiumBps / auditBps.
    function _fee(uint128 amount) internal view returns (uint128) {
        return uint128(uint256(amount) * PREMIUM_BPS / AUDIT_BPS);
    }

    function _leafIndex(Assignment storage a, uint64 nLeaves) internal view returns (uint64) {
        if (nLeaves == 0) return 0;
        return uint64(uint256(keccak256(abi.encode(a.seed, a.commitment))) % nLeaves);
    }

    /// @dev The assignment being revealed: committed by the caller, before the reveal deadline.
    function _revealing(uint256 batchId, uint256 index) internal view returns (Assignment storage a) {
        a = assignments[_key(batchId, index)];
        if (a.status != COMMITTED) revert WrongAuditState(batchId, index, a.status);
        if (a.auditor != msg.sender) revert NotTheAuditor(a.auditor, msg.sender);
        uint64 deadline = a.start + params.commitWindow + params.revealWindow;
        if (block.timestamp > deadline) revert AuditDeadline(deadline);
    }

    /// @dev Checks that `job` is job `index` of `batchId`; returns its request digest.
    function _prove(uint256 batchId, uint256 index, JobProof calldata job) internal view returns (bytes32 rd) {
        Settlement.Batch memory b = settlement.getBatch(batchId);
        bytes32 leaf = settlement.leafOf(job.item, job.client, job.amount);
        // INVARIANT: every audit action names a job its batch root commits.
        if (!MerkleProof.verify(b.root, leaf, index, job.proof)) revert NotInBatch();
        rd = settlement.requestDigest(job.item.req);
    }

    /// @dev Auditors registered (or refreshed) before the drawing round was due, with their weights:
    ///      nobody joins the list after seeing the randomness that would pick it.
    function _eligible(uint64 roundTime) internal view returns (Auditor[] memory all) {
        all = list;
        for (uint256 i = 0; i < all.length; i++) if (all[i].since >= roundTime) all[i].weight = 0;
    }

    function _assign(uint256 batchId, uint256 index, Auditor[] memory all, bytes32 seed, uint8 attempt, uint8 why, uint64 start) internal {
        bytes32 jobSeed = keccak256(abi.encode(seed, index, attempt));
        address auditor = _pick(all, jobSeed);
        Assignment storage a = assignments[_key(batchId, index)];
        a.auditor = auditor;
        a.status = DRAWN;
        a.attempt = attempt;
        a.why = why;
        a.start = start;
        a.seed = jobSeed;
        emit AuditorDrawn(batchId, index, auditor, why, attempt, start + params.commitWindow);
    }

    /// @dev Stake-weighted choice: auditor i with probability weight_i / total. With no eligible
    ///      auditor the job is still audited: nobody can commit, and it is redrawn after the deadline.
    function _pick(Auditor[] memory all, bytes32 seed) internal pure returns (address) {
        uint256 total;
        for (uint256 i = 0; i < all.length; i++) total += all[i].weight;
        if (total == 0) return address(0);
        uint256 r = uint256(keccak256(abi.encode(seed, "auditor"))) % total;
        for (uint256 i = 0; i < all.length; i++) {
            if (r < all[i].weight) return all[i].account;
            r -= all[i].weight;
        }
        revert NoAuditors(); // unreachable: r < total
    }

    /// @dev Active auditor stake in gwei, or 0 when below the auditor minimum or not an auditor.
    function _weight(address account) internal view returns (uint64) {
        (uint8 role,,,, uint128 active,) = settlement.stakers(account);
        Settlement.Params memory sp = settlement.getParams();
        if (role != 2 || active == 0 || active < sp.minAuditorStake) return 0;
        return uint64(active / 1 gwei);
    }

    function _remove(address account) internal returns (bool) {
        uint256 n = list.length;
        for (uint256 i = 0; i < n; i++) {
            if (list[i].account == account) {
                list[i] = list[n - 1];
                list.pop();
                emit AuditorRemoved(account);
                return true;
            }
        }
        return false;
    }

    /// @dev Vector root (docs/TRACE.md) of little-endian u32 words: chunks of 1,024 bytes hashed as
    ///      leaves, the project's one Merkle tree over them; ZERO for no words.
    function _vectorRoot(bytes calldata words) internal view returns (bytes32) {
        uint256 n = (words.length + 1023) / 1024;
        bytes32[] memory leaves = new bytes32[](n);
        for (uint256 c = 0; c < n; c++) {
            uint256 end = (c + 1) * 1024;
            if (end > words.length) end = words.length;
            leaves[c] = MerkleProof.leafHash(words[c * 1024:end]);
        }
        return MerkleRoot.rootInPlace(leaves);
    }
}

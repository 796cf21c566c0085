// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import "./Errors.sol";
import {ModelRegistry} from "./ModelRegistry.sol";
import {MerkleProof} from "./lib/MerkleProof.sol";
import {MerkleRoot} from "./MerkleRoot.sol";

/// @title Settlement: stakes, escrow and batched claims
/// @notice Providers and auditors bond native coin; clients deposit into escrow and sign job
///         requests (EIP-712); a provider reserves a request's maximum price from the client's
///         escrow when it accepts it (`reserve`), serves it against the client's delivery
///         acknowledgements (EIP-712 `Delivery`), and claims many jobs in one transaction,
///         committing a Merkle root of their receipts; after the challenge window a batch pays out
///         every job that is not under dispute, and each disputed job settles when its last game
///         ends. Formats: docs/CHAIN.md.
/// @dev Value accounting (checked by the invariant tests):
///      address(this).balance == totalStaked + totalEscrow + totalPending + totalOwed + totalBurned,
///      where totalEscrow counts free escrow (escrowOf) and reserved escrow (reservations) alike.
///      Stake lock (docs/CHAIN.md "Economics"): every pending batch locks exposureOf(batch.amount)
///      of its provider's active stake, so for every staker locked <= active, and locked equals
///      the sum of exposureOf(amount) over its pending batches. exposureOf(price) =
///      price / (p * (1 - r) * (1 - c)) (p = auditBps, r = rewardBps, c = collusionBps, as
///      fractions), also the slash of a lost dispute before the floor: a provider can always open a
///      sock-puppet game on its own job first, and that puppet then collects the reward share r of
///      the slash, so only the burned share deters; and auditors colluding with it (a share c of
///      auditor stake) approve its cheats, so a cheat is caught with probability p * (1 - c). The
///      burned share is price / (p * (1 - c)), so a cheat loses at least its price in expectation.
/// @notice What Settlement calls on the audit contract: the premiums of a claim into its pool.
interface IAuditPool {
    function fund(uint256 batchId) external payable;
}

contract Settlement {
    /// @notice Economic parameters, fixed at deployment (defaults in docs/CHAIN.md).
    struct Params {
        uint128 minProviderStake;
        uint128 minAuditorStake;
        uint64 unbondingDelay;
        uint64 challengeWindow;
        uint32 auditBps; // audit probability p in basis points: the burned share of a slash >= price / p
        uint32 rewardBps; // share of a loser's forfeit paid to the winner, < 10_000; the rest is burned
        uint32 premiumBps; // audit premium: share of each claimed job's amount paid into the Audits pool at claim
        uint32 collusionBps; // tolerated share c of auditor stake colluding with a provider, < 10_000: the lock and slash grow by 1 / (1 - c)
        uint32 dataBps; // data share: of each claimed job on a model with a training record, credited to its datasets' contributors
    }

    /// @notice What a client signs (EIP-712 `JobRequest`).
    struct JobRequest {
        address provider;
        bytes32 modelRoot;
        bytes32 promptRoot; // vector root of the prompt token ids (u32), src/trace/vector.ts
        bytes32 paramsHash;
        uint64 seed;
        uint64 nonce;
        uint64 expiry;
        uint32 maxTokens;
        uint128 pricePerToken;
    }

    /// @notice The client's acknowledgement of delivery (EIP-712 `Delivery(bytes32 request,
    ///         uint32 nOutput, bytes32 outputRoot)`, signed by the request's signer): it received
    ///         the first `nOutput` output tokens, whose vector root is `outputRoot`. A claim bills
    ///         the prompt plus the acknowledged output tokens, no more.
    struct Delivery {
        uint32 nOutput;
        bytes32 outputRoot;
        bytes32 r;
        bytes32 vs;
    }

    /// @notice One job in a claim: the signed request, the client's compact signature
    ///         (EIP-2098 r, vs), the receipt fields the request does not already fix, and the
    ///         client's last delivery acknowledgement.
    struct ClaimItem {
        JobRequest req;
        bytes32 r;
        bytes32 vs;
        bytes32 outputRoot; // vector root of the output token ids (u32)
        bytes32 traceRoot;
        uint32 nPrompt;
        uint32 nOutput;
        uint32 nLayer;
        Delivery ack;
    }

    /// @notice Escrow a provider set aside for one accepted request: maxTokens * pricePerToken
    ///         of the client's escrow, until the request is claimed or expires.
    struct Reservation {
        address client;
        uint64 expiry;
        uint128 amount;
    }

    /// @dev Two slots: (role, openDisputes, unbondAt, unbonding) and (active, locked), so a claim
    ///      or a finalize updates the lock with one write to a slot that is already non-zero.
    struct Staker {
        uint8 role; // 0 none, 1 provider, 2 auditor
        uint32 openDisputes;
        uint64 unbondAt;
        uint128 unbonding;
        uint128 active;
        uint128 locked; // part of `active` backing pending claims: cannot be unbonded or claimed against
    }

    /// @dev Slots: (provider, finalizesAt), (amount, status, openDisputes, count), disputed, root. A
    ///      game's end reads and writes the second and third only (the game passes the provider),
    ///      and `disputed` alone in its slot is refunded when its last disputed job settles.
    struct Batch {
        address provider;
        uint64 finalizesAt;
        uint128 amount; // still pending: not yet paid out, refunded or slashed away
        uint8 status; // 1 pending, 2 final, 3 paid out except the jobs still under dispute
        uint32 openDisputes; // open games on the batch's jobs
        uint32 count;
        bool data; // the batch took the data share: it holds each job's _net(amount, true), plus the share of its untrained jobs
        uint128 disputed; // part of `amount` belonging to jobs with at least one open game
        bytes32 root;
    }

    uint8 public constant ROLE_PROVIDER = 1;
    uint8 public constant ROLE_AUDITOR = 2;
    uint8 internal constant PENDING = 1;
    uint8 internal constant FINAL = 2;
    uint8 internal constant PARTIAL = 3; // finalized except its disputed jobs (then amount == disputed)

    /// @notice Outcomes the dispute game reports (onDisputeResolved).
    uint8 public constant PROVIDER_WON = 1;
    uint8 public constant PROVIDER_LOST = 2;
    uint8 public constant VOIDED = 3; // the job was lost in another game: nothing moves a second time

    bytes32 public constant JOB_REQUEST_TYPEHASH = keccak256(
        "JobRequest(address provider,bytes32 modelRoot,bytes32 promptRoot,bytes32 paramsHash,uint64 seed,uint64 nonce,uint64 expiry,uint32 maxTokens,uint128 pricePerToken)"
    );
    /// @notice What the provider signs about a job it answered (receipt v2, docs/TRACE.md).
    bytes32 public constant RECEIPT_TYPEHASH = keccak256(
        "Receipt(bytes32 request,bytes32 outputRoot,bytes32 traceRoot,uint32 nPrompt,uint32 nOutput,uint32 nLayer)"
    );
    /// @notice What the client signs as tokens arrive.
    bytes32 public constant DELIVERY_TYPEHASH = keccak256("Delivery(bytes32 request,uint32 nOutput,bytes32 outputRoot)");
    /// @notice EIP-712 domain separator: name "Tessera", version "1", this chain, this contract.
    bytes32 public immutable DOMAIN_SEPARATOR;

    ModelRegistry public immutable registry;
    address public immutable deployer;
    address public disputeGame;
    /// @notice The audit protocol (docs/CHAIN.md "Audits"): receives the premiums, may slash a
    ///         provider who withholds a drawn job's transcript (onAuditFault).
    address public audits;
    Params internal params;
    /// @dev Copies of the params a dispute's settlement reads (params stays for getParams).
    uint128 internal immutable MIN_PROVIDER_STAKE;
    uint32 internal immutable AUDIT_BPS;
    uint32 internal immutable REWARD_BPS;
    uint32 internal immutable PREMIUM_BPS;
    uint32 internal immutable DATA_BPS;
    /// @dev The divisor of exposureOf: auditBps * (10_000 - rewardBps) * (10_000 - collusionBps).
    uint256 internal immutable EXPOSURE_DIV;

    mapping(address => Staker) public stakers;
    /// @notice Advertised price per token, by provider and model root (0: not served).
    mapping(address => mapping(bytes32 => uint256)) public priceOf;
    /// @dev Free escrow by client (escrowOf), | KEPT (below).
    mapping(address => uint256) internal escrows;
    /// @notice Reservations by request digest.
    mapping(bytes32 => Reservation) public reservations;
    /// @dev Owed balances by account (owedTo), | KEPT.
    mapping(address => uint256) internal oweds;
    /// @dev used[client][nonce >> 8] bit (nonce & 255): a request is paid at most once.
    mapping(address => mapping(uint256 => uint256)) internal usedNonces;
    /// @notice Jobs (by request digest) slashed for withholding their transcript: no game opens on them.
    mapping(bytes32 => bool) public faulted;
    /// @dev Batches by id, 0 .. nBatches - 1 (a mapping: a dispute's settlement reads no length).
    mapping(uint256 => Batch) internal batches;
    uint256 internal nBatches;
    /// @notice Data share credited to a trained model's contributors so far, by model root
    ///         (cumulative; each (dataset, contributor) withdraws its part: withdrawData).
    mapping(bytes32 => uint256) public dataEarned;
    /// @dev What each (model, dataset index, contributor) withdrew so far: keccak256(abi.encode(model, i, contributor)).
    mapping(bytes32 => uint256) internal dataPaid;

    /// @dev The books (totalStaked() .. totalBurned()) and the reentrancy lock, two per slot, each
    ///      total beside one that is non-zero whenever it changes on a dispute's settlement (pending
    ///      pay, stake, the lock: 1 at rest), so a lost dispute updates three warm slots and never
    ///      pays for a fresh one (docs/CHAIN.md "Gas"). Amounts are bounded by this contract's balance.
    struct Books {
        uint128 pending;
        uint128 escrow;
        uint128 staked;
        uint128 burned;
        uint128 owed;
        uint128 locked;
    }

    Books internal books;

    event Staked(address indexed account, uint8 role, uint256 amount, uint256 active);
    event Unstaked(address indexed account, uint256 amount, uint64 availableAt);
    event StakeWithdrawn(address indexed account, uint256 amount);
    event Advertised(address indexed provider, bytes32 indexed modelRoot, uint256 pricePerToken);
    event Deposited(address indexed client, uint256 amount);
    event Withdrawn(address indexed account, uint256 amount);
    event BatchClaimed(uint256 indexed batchId, address indexed provider, bytes32 root, uint32 count, uint128 amount, uint64 finalizesAt);
    event JobClaimed(uint256 indexed batchId, uint32 index, address indexed client, uint64 nonce, bytes32 leaf, uint128 amount);
    /// @notice `amount` paid out; `held` stays pending for the jobs still under dispute.
    event BatchFinalized(uint256 indexed batchId, uint128 amount, uint128 held);
    event Reserved(bytes32 indexed requestDigest, address indexed client, address indexed provider, uint128 amount, uint64 expiry);
    event Released(bytes32 indexed requestDigest, address indexed client, uint128 amount);
    event JobSettled(uint256 indexed batchId, uint128 amount, uint8 outcome);
    event Slashed(address indexed account, uint256 amount, address indexed beneficiary, uint256 reward, uint256 burned);
    /// @notice A claim credited `amount` of data share for `jobs` jobs of batch `batchId` on a trained model.
    event DataCredited(bytes32 indexed modelRoot, uint256 indexed batchId, uint32 jobs, uint256 amount);
    event DataWithdrawn(bytes32 indexed modelRoot, uint256 datasetIndex, address indexed contributor, uint256 amount);

    modifier nonReentrant() {
        // INVARIANT: no external call can re-enter a state-changing function.
        if (books.locked != 1) revert Reentrancy();
        books.locked = 2;
        _;
        books.locked = 1;
    }

    modifier onlyAudits() {
        // INVARIANT: only the wired audit contract can slash for a withheld transcript.
        if (msg.sender != audits) revert OnlyAudits();
        _;
    }

    modifier onlyDisputeGame() {
        // INVARIANT: only the wired dispute game can slash or settle disputes.
        if (msg.sender != disputeGame) revert OnlyDisputeGame();
        _;
    }

    /// @notice Free escrow: what the client can withdraw or a new request can reserve.
    function escrowOf(address account) external view returns (uint256) {
        return _bal(escrows, account);
    }

    /// @notice Withdrawable balances: provider earnings, dispute rewards.
    function owedTo(address account) external view returns (uint256) {
        return _bal(oweds, account);
    }

    /// @notice The books: active and unbonding stake, escrow (free and reserved), pending claims,
    ///         owed balances and burned coin; they sum to this contract's balance.
    function totalStaked() external view returns (uint256) {
        return books.staked;
    }

    function totalEscrow() external view returns (uint256) {
        return books.escrow;
    }

    function totalPending() external view returns (uint256) {
        return books.pending;
    }

    function totalOwed() external view returns (uint256) {
        return books.owed;
    }

    function totalBurned() external view returns (uint256) {
        return books.burned;
    }

    /// @notice Deploys with the model registry and economic parameters.
    constructor(ModelRegistry registry_, Params memory params_) {
        // INVARIANT: p is a probability (a zero p would make every exposure infinite).
        if (params_.auditBps == 0 || params_.auditBps > 10_000) revert BadParameter("auditBps");
        // INVARIANT: some of every slash is burned: a sock puppet of the provider can collect the
        // reward share, so a 100% reward could never deter a self-disputed cheat.
        if (params_.rewardBps >= 10_000) revert BadParameter("rewardBps");
        // INVARIANT: the premium is a share of the job's amount.
        if (params_.premiumBps >= 10_000) revert BadParameter("premiumBps");
        // INVARIANT: some auditors are honest: at a 100% colluding share no audit ever catches a cheat.
        if (params_.collusionBps >= 10_000) revert BadParameter("collusionBps");
        // INVARIANT: the premium and the data share leave something of every job for its provider.
        if (uint256(params_.premiumBps) + params_.dataBps >= 10_000) revert BadParameter("dataBps");
        registry = registry_;
        params = params_;
        MIN_PROVIDER_STAKE = params_.minProviderStake;
        AUDIT_BPS = params_.auditBps;
        REWARD_BPS = params_.rewardBps;
        PREMIUM_BPS = params_.premiumBps;
        DATA_BPS = params_.dataBps;
        EXPOSURE_DIV = uint256(params_.auditBps) * (10_000 - params_.rewardBps) * (10_000 - params_.collusionBps);
        books.locked = 1;
        deployer = msg.sender;
        DOMAIN_SEPARATOR = keccak256(abi.encode(
            keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
            keccak256("Tessera"), keccak256("1"), block.chainid, address(this)
        ));
    }

    /// @notice One-time wiring of the dispute game (deployment script only).
    function wire(address disputeGame_) external {
        // INVARIANT: the dispute game is set once, by the deployer.
        if (msg.sender != deployer || disputeGame != address(0)) revert AlreadyWired();
        disputeGame = disputeGame_;
    }

    /// @notice One-time wiring of the audit contract (deployment script only).
    function wireAudits(address audits_) external {
        // INVARIANT: the audit contract is set once, by the deployer.
        if (msg.sender != deployer || audits != address(0)) revert AlreadyWired();
        audits = audits_;
    }

    /// @notice The economic parameters.
    function getParams() external view returns (Params memory) {
        return params;
    }

    // ---------------------------------------------------------------- staking

    /// @notice Bonds msg.value as `role` (1 provider, 2 auditor); an account has one role.
    function stake(uint8 role) external payable {
        Staker storage s = stakers[msg.sender];
        // INVARIANT: one role per account, and only the two known roles.
        if ((role != ROLE_PROVIDER && role != ROLE_AUDITOR) || (s.role != 0 && s.role != role)) revert WrongRole(msg.sender, role);
        s.role = role;
        s.active += uint128(msg.value);
        uint256 min = role == ROLE_PROVIDER ? params.minProviderStake : params.minAuditorStake;
        // INVARIANT: an active stake is zero or at least the role's minimum.
        if (s.active < min) revert StakeTooLow(msg.sender, s.active, min);
        books.staked += uint128(msg.value);
        emit Staked(msg.sender, role, msg.value, s.active);
    }

    /// @notice Starts unbonding `amount`; it stays slashable until withdrawn after the delay.
    function unstake(uint128 amount) external {
        Staker storage s = stakers[msg.sender];
        // INVARIANT: cannot unbond more than is active, nor stake locked behind pending claims.
        if (amount > s.active) revert AmountTooLarge(amount, s.active);
        if (amount > s.active - s.locked) revert StakeLocked(msg.sender, s.active - s.locked, amount);
        uint256 min = s.role == ROLE_PROVIDER ? params.minProviderStake : params.minAuditorStake;
        uint128 rest = s.active - amount;
        // INVARIANT: what remains active is zero or at least the minimum.
        if (rest != 0 && rest < min) revert StakeTooLow(msg.sender, rest, min);
        s.active = rest;
        s.unbonding += amount;
        s.unbondAt = uint64(block.timestamp) + params.unbondingDelay;
        emit Unstaked(msg.sender, amount, s.unbondAt);
    }

    /// @notice Withdraws unbonded stake once the delay passed and no dispute involves the account.
    function withdrawStake() external nonReentrant {
        Staker storage s = stakers[msg.sender];
        uint256 amount = s.unbonding;
        // INVARIANT: stake leaves only after the unbonding delay and with no open dispute.
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        if (block.timestamp < s.unbondAt) revert StillUnbonding(msg.sender, s.unbondAt);
        if (s.openDisputes != 0) revert DisputeOpen(msg.sender);
        s.unbonding = 0;
        books.staked -= uint128(amount);
        emit StakeWithdrawn(msg.sender, amount);
        _send(msg.sender, amount);
    }

    /// @notice Advertises a price per token for a registered model (0 withdraws the offer).
    function advertise(bytes32 modelRoot, uint256 pricePerToken) external {
        // INVARIANT: only providers advertise, only registered models.
        if (stakers[msg.sender].role != ROLE_PROVIDER) revert WrongRole(msg.sender, ROLE_PROVIDER);
        if (!registry.isRegistered(modelRoot)) revert UnknownModel(modelRoot);
        priceOf[msg.sender][modelRoot] = pricePerToken;
        emit Advertised(msg.sender, modelRoot, pricePerToken);
    }

    // ---------------------------------------------------------------- escrow

    /// @notice Deposits msg.value into the caller's escrow.
    function deposit() external payable {
        _add(escrows, msg.sender, msg.value);
        books.escrow += uint128(msg.value);
        emit Deposited(msg.sender, msg.value);
    }

    /// @notice Withdraws unspent escrow (reserved escrow stays until its request is claimed or expires).
    function withdrawEscrow(uint256 amount) external nonReentrant {
        uint256 bal = _bal(escrows, msg.sender);
        // INVARIANT: never more than the caller's own free balance: reservations are not in it.
        if (amount > bal) revert InsufficientEscrow(msg.sender, bal, amount);
        _put(escrows, msg.sender, bal - amount);
        books.escrow -= uint128(amount);
        emit Withdrawn(msg.sender, amount);
        _send(msg.sender, amount);
    }

    /// @notice Withdraws earnings and dispute rewards owed to the caller.
    function withdrawOwed() external nonReentrant {
        uint256 amount = _bal(oweds, msg.sender);
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        _put(oweds, msg.sender, 0);
        books.owed -= uint128(amount);
        emit Withdrawn(msg.sender, amount);
        _send(msg.sender, amount);
    }

    /// @notice Contributor: withdraws its part of dataset `datasetIndex` of `modelRoot`'s training
    ///         record: dataEarned[modelRoot] * weight * share / 10^8 (the dataset's weight in the
    ///         record, the caller's share in the dataset, both basis points; rounded down), less what
    ///         it withdrew before. Reverts NothingToWithdraw when that is zero.
    function withdrawData(bytes32 modelRoot, uint256 datasetIndex) external nonReentrant {
        uint256 due = dataOwedTo(modelRoot, datasetIndex, msg.sender);
        // INVARIANT: a contributor is paid its part of each credit once: the paid mark moves to
        // what it is entitled to before the transfer, under the reentrancy lock.
        if (due == 0) revert NothingToWithdraw(msg.sender);
        dataPaid[keccak256(abi.encode(modelRoot, datasetIndex, msg.sender))] += due;
        books.owed -= uint128(due);
        emit DataWithdrawn(modelRoot, datasetIndex, msg.sender, due);
        _send(msg.sender, due);
    }

    /// @notice What `contributor` can withdraw now from dataset `datasetIndex` of `modelRoot`
    ///         (0 when it is not a contributor of that dataset); reverts NoTrainingRecord or
    ///         BadTrainingRecord("index") for a model without a record or an index past it.
    function dataOwedTo(bytes32 modelRoot, uint256 datasetIndex, address contributor) public view returns (uint256) {
        (bytes32 root, uint16 weight) = registry.datasetOf(modelRoot, datasetIndex);
        uint256 share = registry.datasets().shareOf(root, contributor);
        // Rounded down on the cumulative credit: the dust of all (dataset, contributor) pairs of a
        // model is below one wei each at any time, and stays in totalOwed.
        uint256 entitled = dataEarned[modelRoot] * weight * share / 1e8;
        return entitled - dataPaid[keccak256(abi.encode(modelRoot, datasetIndex, contributor))];
    }

    // ---------------------------------------------------------------- reservations

    /// @notice Provider: accepts a signed request by setting aside its maximum price,
    ///         maxTokens * pricePerToken, from the client's free escrow; the claim draws from it
    ///         and returns the rest. The client signs nothing on chain: the provider's call, made
    ///         before it serves, is what makes the request's pay certain (docs/CHAIN.md "Payments").
    function reserve(JobRequest calldata q, bytes32 r, bytes32 vs) external returns (bytes32 rd) {
        // INVARIANT: only the named provider reserves, a live request, once, never a paid nonce.
        if (q.provider != msg.sender) revert NotTheProvider(q.provider, msg.sender);
        if (block.timestamp > q.expiry) revert RequestExpired(q.expiry);
        rd = requestDigest(q);
        address client = _recover(rd, r, vs);
        if (reservations[rd].client != address(0)) revert AlreadyReserved(rd);
        // The nonce is consumed now, so the client cannot have another request with it paid first.
        _useNonce(client, q.nonce);
        uint256 amount = uint256(q.maxTokens) * q.pricePerToken;
        uint256 bal = _bal(escrows, client);
        // INVARIANT: a deposit backs at most its balance, across all providers and requests.
        if (amount > bal || amount >> 128 != 0) revert InsufficientEscrow(client, bal, amount);
        _put(escrows, client, bal - amount);
        reservations[rd] = Reservation(client, q.expiry, uint128(amount));
        emit Reserved(rd, client, msg.sender, uint128(amount), q.expiry);
    }

    /// @notice Anyone: returns an expired, unclaimed reservation to its client's free escrow.
    function release(bytes32 rd) external {
        Reservation memory rs = reservations[rd];
        // INVARIANT: a reservation outlives its request only until someone releases it; never before expiry.
        if (rs.client == address(0)) revert NotReserved(rd);
        if (block.timestamp <= rs.expiry) revert ReservationActive(rd, rs.expiry);
        delete reservations[rd];
        _add(escrows, rs.client, rs.amount);
        emit Released(rd, rs.client, rs.amount);
    }

    // ---------------------------------------------------------------- claims

    /// @notice EIP-712 digest of a job request (what the client signs).
    function requestDigest(JobRequest calldata q) public view returns (bytes32) {
        return _typed(keccak256(abi.encode(JOB_REQUEST_TYPEHASH, q)));
    }

    /// @notice Receipt digest v2 (docs/TRACE.md): the EIP-712 digest of `Receipt(request,
    ///         outputRoot, traceRoot, nPrompt, nOutput, nLayer)` that the provider signs, where
    ///         `request` is the request's EIP-712 digest (which fixes model, prompt, params, seed).
    function receiptDigest(ClaimItem calldata it) public view returns (bytes32) {
        return _receiptDigest(it, requestDigest(it.req));
    }

    function _receiptDigest(ClaimItem calldata it, bytes32 rd) internal view returns (bytes32) {
        return _typed(keccak256(abi.encode(RECEIPT_TYPEHASH, rd, it.outputRoot, it.traceRoot, it.nPrompt, it.nOutput, it.nLayer)));
    }

    /// @notice EIP-712 digest of a delivery acknowledgement (what the client signs as tokens arrive).
    function deliveryDigest(bytes32 rd, uint32 nOutput, bytes32 outputRoot) public view returns (bytes32) {
        return _typed(keccak256(abi.encode(DELIVERY_TYPEHASH, rd, nOutput, outputRoot)));
    }

    function _typed(bytes32 structHash) internal view returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", DOMAIN_SEPARATOR, structHash));
    }

    /// @notice Batch leaf data of a job: abi.encode(receiptDigest, requestDigest, client, amount);
    ///         the leaf hash is sha256(0x00 || data).
    ///         Reverts JobFaulted for a job slashed for withholding (so no game opens on it).
    function leafOf(ClaimItem calldata it, address client, uint128 amount) public view returns (bytes32) {
        bytes32 rd = requestDigest(it.req);
        // INVARIANT: a job settled by an audit fault is never disputed (nor refunded) again.
        if (faulted[rd]) revert JobFaulted(rd);
        return MerkleProof.leafHash(abi.encode(_receiptDigest(it, rd), rd, client, amount));
    }

    /// @notice Stake a pending claim of `amount` locks, and the slash a lost dispute on it takes
    ///         before the minimum-stake floor: amount / (p * (1 - r) * (1 - c)) with p = auditBps,
    ///         r = rewardBps and c = collusionBps (each / 10_000), i.e. amount * 10^12 / (auditBps *
    ///         (10_000 - rewardBps) * (10_000 - collusionBps)), rounded down on the batch total. The
    ///         provider's own sock puppet may collect the reward share r of a slash, and its sock-puppet
    ///         auditors (a share c of auditor stake) approve its cheats, so a cheat is caught with
    ///         probability p * (1 - c) and only the burned share, amount / (p * (1 - c)), deters: the
    ///         cheat then loses at least its price in expectation (docs/CHAIN.md "Audits", "Collusion").
    function exposureOf(uint256 amount) public view returns (uint256) {
        return amount * 1e12 / EXPOSURE_DIV;
    }

    /// @dev A claim's running sums (in memory: the loop's locals would not fit the stack) and the
    ///      model of the job before, so a batch of one model asks the registry once.
    struct Claiming {
        bytes32 model;
        uint32 nLayer;
        bool trained;
        bool anyTrained;
        uint32 runJobs; // jobs of the current run of one trained model
        uint128 run; // their data share, credited when the run ends
        uint128 total; // sum of amount - premium
        uint128 premium;
        uint128 data; // sum of every job's data share
        uint128 untrained; // of which, jobs on models without a training record (it stays in the batch)
    }

    /// @dev The client of the current run of consecutive jobs of one client, held in memory and
    ///      written once when the run ends (_flush): its free escrow, and its nonce bitmap word
    ///      `word` with the bits this batch set in it so far (a nonce used earlier in the batch is
    ///      refused like one used in an earlier transaction). The batch is atomic, so a job the
    ///      escrow cannot cover still reverts all of it. `spent` sums the amounts taken from escrow.
    struct Payer {
        address client; // 0: no run yet
        uint256 bal;
        uint256 word;
        uint256 used; // usedNonces[client][word] | the bits this batch set in it
        bool dirty; // `used` has bits not yet written
        uint256 spent;
    }

    /// @notice Claims payment for a batch of jobs served by the caller; returns the batch id.
    ///         Locks exposureOf(batch amount) of the caller's active stake until the batch finalizes.
    ///         When any job's model has a training record (and dataBps > 0), the batch takes the
    ///         data share: each job on a trained model gives dataBps of its amount to the model's
    ///         contributors (dataEarned, withdrawData); a lost job of the batch refunds
    ///         _net(amount, true) whatever its model, and the share of its jobs on untrained models
    ///         stays in the batch for the provider, locked and paid with it (docs/CHAIN.md
    ///         "Data provenance").
    function claimBatch(ClaimItem[] calldata items) external returns (uint256 batchId) {
        uint256 n = items.length;
        // INVARIANT: a batch has at least one job, and its provider is bonded above the minimum.
        if (n == 0) revert EmptyBatch();
        Staker storage p = stakers[msg.sender];
        if (p.role != ROLE_PROVIDER) revert WrongRole(msg.sender, ROLE_PROVIDER);
        if (p.active < params.minProviderStake) revert StakeTooLow(msg.sender, p.active, params.minProviderStake);
        bytes32[] memory leaves = new bytes32[](n);
        Claiming memory cx;
        Payer memory pr;
        batchId = nBatches;
        for (uint256 i = 0; i < n; i++) {
            ClaimItem calldata it = items[i];
            if (it.req.modelRoot != cx.model) {
                _endRun(cx, batchId);
                cx.model = it.req.modelRoot;
                (cx.nLayer, cx.trained) = registry.claimInfo(cx.model);
            }
            (bytes32 leaf, uint128 amount) = _claimOne(it, batchId, i, cx.nLayer, pr);
            leaves[i] = leaf;
            uint128 prem = uint128(uint256(amount) * PREMIUM_BPS / 10_000);
            uint128 dat = uint128(uint256(amount) * DATA_BPS / 10_000);
            cx.total += amount - prem;
            cx.premium += prem;
            cx.data += dat;
            if (cx.trained) {
                cx.anyTrained = true;
                cx.runJobs++;
                cx.run += dat;
            } else {
                cx.untrained += dat;
            }
        }
        _endRun(cx, batchId);
        _flush(pr);
        books.escrow -= uint128(pr.spent);
        // INVARIANT: a lost job refunds _net(amount, batch.data), known from its amount and its
        // batch alone; a batch with no trained model takes no data share. In a batch that does,
        // the untrained jobs' share stays in the batch: the provider's, locked like the rest until
        // it is paid with the batch.
        bool data = cx.anyTrained && DATA_BPS != 0;
        uint128 total = cx.total;
        if (data) {
            uint128 credited = cx.data - cx.untrained;
            total -= credited;
            books.owed += credited;
        }
        // INVARIANT: locked <= active; a claim needs its whole exposure in unlocked active stake.
        uint256 lock = exposureOf(total);
        uint256 unlocked = p.active - p.locked;
        if (lock > unlocked) revert StakeLocked(msg.sender, unlocked, lock);
        p.locked += uint128(lock);
        uint64 finalizesAt = uint64(block.timestamp) + params.challengeWindow;
        bytes32 root = MerkleRoot.rootInPlace(leaves);
        batches[batchId] = Batch(msg.sender, finalizesAt, total, PENDING, 0, uint32(n), data, 0, root);
        nBatches = batchId + 1;
        books.pending += total;
        emit BatchClaimed(batchId, msg.sender, root, uint32(n), total, finalizesAt);
        // The premiums leave for the audit pool; the batch keeps each job's net amount.
        if (cx.premium != 0) IAuditPool(audits).fund{value: cx.premium}(batchId);
    }

    /// @dev Ends a run of jobs on one model: a trained model's data share is credited to it.
    function _endRun(Claiming memory cx, uint256 batchId) internal {
        if (cx.runJobs == 0) return;
        if (cx.run != 0) dataEarned[cx.model] += cx.run;
        emit DataCredited(cx.model, batchId, cx.runJobs, cx.run);
        cx.runJobs = 0;
        cx.run = 0;
    }

    /// @notice A job's amount less its audit premium, and less its data share in a batch that
    ///         takes one (`data`): what its batch holds for the provider (a batch that took the
    ///         share also holds that of its untrained jobs), and what a lost job refunds to the
    ///         client (the premium paid for the audit, the data share to the contributors, or
    ///         with the batch to the provider for an untrained model's job).
    function _net(uint128 amount, bool data) internal view returns (uint128) {
        uint256 off = uint256(amount) * PREMIUM_BPS / 10_000;
        if (data) off += uint256(amount) * DATA_BPS / 10_000;
        return amount - uint128(off);
    }

    function _claimOne(ClaimItem calldata it, uint256 batchId, uint256 i, uint32 nLayer, Payer memory pr)
        internal
        returns (bytes32 leaf, uint128 amount)
    {
        JobRequest calldata q = it.req;
        // INVARIANT: only the provider named in the client's request can claim it, before expiry.
        if (q.provider != msg.sender) revert NotTheProvider(q.provider, msg.sender);
        if (block.timestamp > q.expiry) revert RequestExpired(q.expiry);
        _checkCounts(it, nLayer);
        bytes32 rd = requestDigest(q);
        address client = _recover(rd, it.r, it.vs);
        amount = _billed(it, rd, client);
        _pay(pr, rd, client, q.nonce, amount);
        leaf = MerkleProof.leafHash(abi.encode(_receiptDigest(it, rd), rd, client, amount));
        emit JobClaimed(batchId, uint32(i), client, q.nonce, leaf, amount);
    }

    /// @dev The receipt's counts against the request and the registered model's layer count.
    function _checkCounts(ClaimItem calldata it, uint32 nLayer) internal pure {
        // INVARIANT: a claim names a registered model and that model's layer count, at least one
        // prompt and one output token, and no more tokens than the client allowed.
        if (nLayer == 0) revert UnknownModel(it.req.modelRoot);
        if (it.nLayer != nLayer) revert WrongLayerCount(it.nLayer, nLayer);
        if (it.nPrompt == 0) revert EmptyPrompt();
        if (it.nOutput == 0) revert EmptyOutput();
        uint256 tokens = uint256(it.nPrompt) + it.nOutput;
        if (tokens > it.req.maxTokens) revert TooManyTokens(tokens, it.req.maxTokens);
    }

    /// @dev What the job bills: the prompt plus the output tokens the client acknowledged.
    function _billed(ClaimItem calldata it, bytes32 rd, address client) internal view returns (uint128) {
        Delivery calldata a = it.ack;
        // INVARIANT: the client acknowledged at least one output token, no more than the receipt
        // has, the receipt's own output root when it acknowledged all of them, and signed it.
        if (a.nOutput == 0 || a.nOutput > it.nOutput || (a.nOutput == it.nOutput && a.outputRoot != it.outputRoot)) {
            revert DeliveryMismatch(a.nOutput, it.nOutput);
        }
        if (_recover(deliveryDigest(rd, a.nOutput, a.outputRoot), a.r, a.vs) != client) revert NotAcknowledged(client);
        return uint128((uint256(it.nPrompt) + a.nOutput) * it.req.pricePerToken);
    }

    /// @dev Takes `amount` from the request's reservation (whose nonce was consumed when it was
    ///      reserved; the rest returns to free escrow), or else consumes the nonce and takes it
    ///      from the client's free escrow (the provider did not reserve). A reservation exists only
    ///      with its nonce used (reserve consumes it, nothing clears a nonce), so an unused nonce
    ///      skips the reservation's cold read; a used one is a reservation of this client or a replay.
    function _pay(Payer memory pr, bytes32 rd, address client, uint64 nonce, uint128 amount) internal {
        if (client != pr.client) {
            _flush(pr);
            pr.client = client;
            pr.bal = _bal(escrows, client);
            pr.word = nonce >> 8;
            pr.used = usedNonces[client][nonce >> 8];
        } else if (nonce >> 8 != pr.word) {
            if (pr.dirty) usedNonces[client][pr.word] = pr.used;
            pr.dirty = false;
            pr.word = nonce >> 8;
            pr.used = usedNonces[client][nonce >> 8];
        }
        uint256 bit = 1 << (nonce & 255);
        if (pr.used & bit != 0) {
            Reservation storage rs = reservations[rd];
            // INVARIANT: each (client, nonce) is reserved or paid at most once: a used nonce pays
            // only through its own live reservation, which the claim deletes.
            if (rs.client != client) revert JobAlreadyClaimed(client, nonce);
            // amount <= maxTokens * price = rs.amount: the counts were checked against maxTokens.
            pr.bal += rs.amount - amount;
            delete reservations[rd];
        } else {
            pr.used |= bit;
            pr.dirty = true;
            // INVARIANT: payment comes only from the client's own escrow.
            if (pr.bal < amount) revert InsufficientEscrow(client, pr.bal, amount);
            pr.bal -= amount;
        }
        pr.spent += amount;
    }

    /// @dev Ends a client's run: writes its escrow and its nonce word once.
    function _flush(Payer memory pr) internal {
        if (pr.client == address(0)) return;
        _put(escrows, pr.client, pr.bal);
        if (pr.dirty) usedNonces[pr.client][pr.word] = pr.used;
        pr.dirty = false;
    }

    function _useNonce(address client, uint64 nonce) internal {
        uint256 word = nonce >> 8;
        uint256 bit = 1 << (nonce & 255);
        uint256 used = usedNonces[client][word];
        // INVARIANT: each (client, nonce) is reserved or paid at most once.
        if (used & bit != 0) revert JobAlreadyClaimed(client, nonce);
        usedNonces[client][word] = used | bit;
    }

    /// @dev ecrecover of an EIP-2098 compact signature; reverts on an invalid one.
    function _recover(bytes32 digest, bytes32 r, bytes32 vs) internal pure returns (address a) {
        bytes32 s = vs & bytes32(0x7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff);
        uint8 v = uint8((uint256(vs) >> 255) + 27);
        // INVARIANT: low-s only (no malleable twin signatures) and a real signer.
        if (uint256(s) > 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0) revert BadSignature();
        a = ecrecover(digest, v, r, s);
        if (a == address(0)) revert BadSignature();
    }

    /// @notice True when `nonce` of `client` has been claimed or reserved.
    function isClaimed(address client, uint64 nonce) external view returns (bool) {
        return usedNonces[client][nonce >> 8] & (1 << (nonce & 255)) != 0;
    }

    /// @notice Pays a batch to its provider once its window closed: every job not under dispute.
    ///         The disputed jobs stay pending (their lock too) and settle when their last game ends.
    function finalize(uint256 batchId) external {
        Batch storage b = _batch(batchId);
        // INVARIANT: a batch is paid out once, after its window; disputed jobs are held back.
        if (b.status != PENDING) revert BatchNotPending(batchId);
        if (block.timestamp < b.finalizesAt) revert ChallengeWindowOpen(batchId, b.finalizesAt);
        uint128 held = b.disputed;
        uint128 pay = b.amount - held;
        b.status = held == 0 ? FINAL : PARTIAL;
        // The lock of what is paid is released; the held jobs keep exactly exposureOf(held).
        stakers[b.provider].locked -= uint128(exposureOf(b.amount) - exposureOf(held));
        b.amount = held;
        books.pending -= uint128(pay);
        _add(oweds, b.provider, pay);
        books.owed += uint128(pay);
        emit BatchFinalized(batchId, pay, held);
    }

    /// @notice A batch by id.
    function getBatch(uint256 batchId) external view returns (Batch memory) {
        return _batch(batchId);
    }

    /// @notice Number of batches claimed so far.
    function batchCount() external view returns (uint256) {
        return nBatches;
    }

    function _batch(uint256 batchId) internal view returns (Batch storage) {
        if (batchId >= nBatches) revert UnknownBatch(batchId);
        return batches[batchId];
    }

    // ---------------------------------------------------------------- dispute hooks

    /// @notice Opens a game on a job of a pending batch. The job's first open game needs the
    ///         batch's window open and holds the job back from finalize; further games on a job
    ///         that is still under dispute may open after the window (a job's window stays open
    ///         until its last game is decided). Freezes the provider's unbonded stake meanwhile.
    ///         Keeps the slots a lost or won dispute credits (the client's escrow, the
    ///         challenger's and the provider's owed balances) non-zero, so the game's last move
    ///         pays no fresh slot (the opener pays it).
    function onDisputeOpened(uint256 batchId, uint128 jobAmount, bool firstGame, address client, address challenger)
        external
        onlyDisputeGame
        returns (address provider, bytes32 root)
    {
        Batch storage b = _batch(batchId);
        _keep(escrows, client);
        _keep(oweds, challenger);
        _keep(oweds, b.provider);
        if (firstGame) {
            // INVARIANT: a paid-out claim, or one past its window, cannot be disputed anew.
            if (b.status != PENDING) revert BatchNotPending(batchId);
            if (block.timestamp >= b.finalizesAt) revert ChallengeWindowClosed(batchId);
            b.disputed += _net(jobAmount, b.data);
        } else if (b.status == FINAL) {
            // INVARIANT: a job under dispute keeps its batch open (unreachable otherwise).
            revert BatchNotPending(batchId);
        }
        b.openDisputes++;
        stakers[b.provider].openDisputes++;
        return (b.provider, b.root);
    }

    /// @notice Closes a game. `outcome` PROVIDER_LOST: the job is refunded to the client and the
    ///         provider is slashed max(exposureOf(job price), minimum provider stake),
    ///         capped by its stake; `rewardBps` of it is owed to `winner`, the rest is burned.
    ///         The job's share of the batch lock is consumed by the slash (any rounding wei is
    ///         released); the rest of the slash comes from unbonding stake, then unlocked active
    ///         stake, never from stake locked behind other claims. PROVIDER_WON on the job's last
    ///         open game: the job is no longer held back (paid at once if its batch was already
    ///         finalized). VOIDED: the job was lost in another game; only the counters move.
    ///         `client` and `winner` are read for PROVIDER_LOST only (the game passes zero otherwise).
    function onDisputeResolved(uint256 batchId, address provider, uint8 outcome, address client, uint128 jobAmount, address winner, bool lastGame)
        external
        onlyDisputeGame
    {
        // The game passes the batch of a game it opened (onDisputeOpened checked it exists) and
        // the batch's provider, as onDisputeOpened returned it (spares a cold read of its slot).
        Batch storage b = batches[batchId];
        b.openDisputes--;
        Staker storage s = stakers[provider];
        s.openDisputes--;
        uint128 net = _net(jobAmount, b.data);
        if (outcome == PROVIDER_LOST) {
            b.disputed -= net;
            _slash(b, provider, s, client, jobAmount, winner);
        } else if (outcome == PROVIDER_WON && lastGame) {
            b.disputed -= net;
            if (b.status == PARTIAL) {
                uint256 before = b.amount;
                b.amount -= net;
                s.locked -= uint128(exposureOf(before) - exposureOf(b.amount));
                books.pending -= net;
                _add(oweds, provider, net);
                books.owed += net;
            }
        }
        if (b.status == PARTIAL && b.amount == 0) b.status = FINAL;
        emit JobSettled(batchId, jobAmount, outcome);
    }

    /// @notice Audits: the provider of job `rd` (of `batchId`, billed `jobAmount` to `client`)
    ///         withheld its transcript from an availability challenge past its deadline: the job
    ///         counts as a lost dispute (refund, slash, `challenger` rewarded) and is never
    ///         disputed again. Audits checked the job is in the batch and under no game.
    function onAuditFault(uint256 batchId, bytes32 rd, address client, uint128 jobAmount, address challenger) external onlyAudits {
        Batch storage b = _batch(batchId);
        // INVARIANT: only a pending batch inside its window, each job at most once.
        if (b.status != PENDING) revert BatchNotPending(batchId);
        if (block.timestamp >= b.finalizesAt) revert ChallengeWindowClosed(batchId);
        if (faulted[rd]) revert JobFaulted(rd);
        faulted[rd] = true;
        _keep(oweds, challenger);
        _slash(b, b.provider, stakers[b.provider], client, jobAmount, challenger);
        emit JobSettled(batchId, jobAmount, PROVIDER_LOST);
    }

    /// @dev `jobAmount` is the job's billed amount; its batch holds (and the client gets back) the net.
    function _slash(Batch storage b, address provider, Staker storage s, address client, uint128 jobAmount, address winner) internal {
        uint256 before = b.amount;
        _refund(b, client, _net(jobAmount, b.data));
        // The job's share of the batch lock (exact: the batch keeps exposureOf(its new amount)).
        uint256 share = exposureOf(before) - exposureOf(b.amount);
        s.locked -= uint128(share);
        uint256 want = exposureOf(jobAmount);
        if (want < MIN_PROVIDER_STAKE) want = MIN_PROVIDER_STAKE;
        // Slash the job's lock first, then stake that is still unbonding, then unlocked active stake.
        uint256 fromLock = want < share ? want : share;
        uint256 rest = want - fromLock;
        uint256 fromUnbonding = rest < s.unbonding ? rest : s.unbonding;
        s.unbonding -= uint128(fromUnbonding);
        rest -= fromUnbonding;
        uint256 free = s.active - fromLock - s.locked;
        uint256 fromFree = rest < free ? rest : free;
        s.active -= uint128(fromLock + fromFree);
        uint256 slashed = fromLock + fromUnbonding + fromFree;
        books.staked -= uint128(slashed);
        uint256 reward = slashed * REWARD_BPS / 10_000;
        _add(oweds, winner, reward);
        books.owed += uint128(reward);
        books.burned += uint128(slashed - reward);
        emit Slashed(provider, slashed, winner, reward, slashed - reward);
    }

    /// @dev A lost job's net amount leaves its batch for the client's escrow.
    function _refund(Batch storage b, address client, uint128 net) internal {
        b.amount -= net;
        books.pending -= net;
        _add(escrows, client, net);
        books.escrow += net;
    }

    /// @dev escrows and oweds hold balance | KEPT once written (or kept by onDisputeOpened): such a
    ///      slot never returns to zero, so a later credit (a client's refund, a dispute's reward)
    ///      is a warm write, not a fresh 22,100-gas one in the move that ends a game.
    uint256 internal constant KEPT = 1 << 255;

    function _bal(mapping(address => uint256) storage m, address a) internal view returns (uint256) {
        return m[a] & (KEPT - 1);
    }

    function _put(mapping(address => uint256) storage m, address a, uint256 v) internal {
        m[a] = v | KEPT;
    }

    function _add(mapping(address => uint256) storage m, address a, uint256 v) internal {
        m[a] = ((m[a] & (KEPT - 1)) + v) | KEPT;
    }

    function _keep(mapping(address => uint256) storage m, address a) internal {
        if (m[a] == 0) m[a] = KEPT;
    }

    function _send(address to, uint256 amount) internal {
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }
}

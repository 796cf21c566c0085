// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import "./Errors.sol";
import {Settlement} from "./Settlement.sol";
import {ModelRegistry} from "./ModelRegistry.sol";
import {MerkleProof} from "./lib/MerkleProof.sol";
import {MerkleRoot} from "./MerkleRoot.sol";
import {Bisection} from "./Bisection.sol";
import {IMachine} from "./IMachine.sol";
import {MachineState} from "./lib/MachineState.sol";

/// @title DisputeGame: bisection down to one micro-step of the dispute machine
/// @notice A challenger bonds and disputes one job of a pending batch. Level 0 descends the
///         receipt's trace tree (leaf = one (position, layer) state, or a position's head). Below
///         the disputed trace leaf the provider commits the transition's frames (level 1, one leaf
///         per op of the machine's op table), the challenger names the element of the disputed
///         op it disagrees with, the provider commits that element's micro-states (level 2), and
///         the Machine executes the one disputed micro-step with its reads opened against agreed
///         roots (docs/MACHINE.md). Each descent round the provider reveals the 2^LOG_K nodes
///         LOG_K levels below the current node and the challenger picks one. Every position either
///         side can reach is decided by executing something: there is no "unchecked" op. Chess
///         clocks with an increment: a party whose clock runs out loses. The challenger adds
///         `depthBond` at the op level and when it names an element.
contract DisputeGame {
    /// @notice Game parameters, fixed at deployment.
    struct Params {
        uint128 challengerBond;
        uint64 clock; // seconds each party may spend thinking, over the whole game
        uint32 rewardBps; // share of the challenger's bond paid to a provider who wins
        uint128 depthBond; // added by the challenger with its first choice at each level below the trace
        uint64 increment; // seconds added to the mover's clock after each move, never above `clock`
    }

    struct Game {
        address provider;
        uint64 jobIndex; // packed beside the provider: one slot
        address challenger;
        // Settlement's batch ids count up from 0 (onDisputeOpened reverts for any other): beside
        // the challenger, which a lost game's end reads anyway.
        uint96 batchId;
        address client;
        uint128 jobAmount;
        uint128 bond;
        uint64 lastMove;
        uint64 providerClock;
        uint64 challengerClock;
        uint8 phase;
        uint8 level;
        uint8 depthLeft;
        uint8 levelDepth;
        uint64 index; // node index at the current depth of this level's tree
        uint64 minLeaf; // leaves a challenger may pick: [minLeaf, lastLeaf]
        uint64 lastLeaf;
        bytes32 node; // current node of the descent
        bytes32 levelRoot;
        bytes32 pre; // state before the disputed transition (level entry: before leaf minLeaf)
        bytes32 post; // the disputed post-state once a leaf is reached
        bytes32 modelRoot; // the signed request's model root
        bytes32 traceRoot; // the receipt's trace root (K/V of earlier positions are read from it)
        bytes32 promptRoot; // the signed request's prompt root
        bytes32 outputRoot; // the claim's output root (what the client acknowledged and is billed)
        bytes32 paramsHash; // the signed request's sha256(abi.encode(IMachine.Sampling))
        bytes32 cfgHash; // keccak256(abi.encode(IMachine.Ctx)) fixed at expandOps (roots, position, layer, config, sampling)
        uint32 nLayer;
        uint32 nPrompt;
        uint32 nOutput;
        uint64 seed;
        uint64 traceLeaf; // the disputed trace leaf
        uint64 opK; // the disputed op (level 1 leaf)
        uint64 elem; // the named element of the disputed op
        uint64 elemCount; // elements of the disputed op's slot
        bool slotIsBlock; // the slot is a block vector (one tree leaf per element), else 256-word chunks
        uint8 bondedLevel; // deepest level the challenger has bonded (0: the opening bond)
        bytes32 frame; // the disputed op's pre-frame
        bytes32 slotRoot; // the slot the disputed op wrote
    }

    /// @notice The context the machine checks a move against, as the provider passes it: the
    ///         model's config (hashes to the registry's configHash) and the request's sampling
    ///         parameters (hash to its paramsHash).
    struct Cfg {
        ModelRegistry.ModelConfigV3 config;
        IMachine.Sampling sampling;
    }

    uint8 internal constant STEP_CHECKED = 1;
    uint8 internal constant TIMED_OUT = 2;
    uint8 internal constant INCONSISTENT = 3;
    uint8 internal constant JOB_LOST = 5; // voided: the provider lost the job in another game

    /// @notice JobGames.state values.
    uint8 internal constant UNDER_DISPUTE = 1;
    uint8 internal constant DEFENDED = 2;
    uint8 internal constant LOST = 3;

    uint8 internal constant LOG_K = 4; // k = 16 children per round
    uint8 internal constant LEVELS = 4; // trace, op, the op's slot, micro-step

    // Phases; REVEAL .. STEP and CHUNK are the provider's turn, CHOOSE and NAME the challenger's.
    uint8 internal constant REVEAL = 1;
    uint8 internal constant REVEAL_PRE = 2;
    uint8 internal constant EXPAND = 3;
    uint8 internal constant STEP = 4;
    uint8 internal constant CHOOSE = 5;
    uint8 internal constant PROVIDER_WON = 6;
    uint8 internal constant CHALLENGER_WON = 7;
    uint8 internal constant NAME = 8;
    uint8 internal constant CHUNK = 9;

    Settlement public immutable settlement;
    /// @notice The dispute machine: op tables, element programs and the one micro-step.
    IMachine public immutable machine;
    ModelRegistry public immutable registry;
    Params internal params;
    /// @dev Copies of params.clock and params.increment that every move reads without an SLOAD, and
    ///      of params.rewardBps that a game's end reads.
    uint64 internal immutable CLOCK;
    uint64 internal immutable INCREMENT;
    uint32 internal immutable REWARD_BPS;
    /// @dev Games by id, 0 .. nGames - 1 (a mapping: a game is known by its phase, never 0 once
    ///      opened, which every move reads anyway, rather than by an array length read apart).
    mapping(uint256 => Game) internal games;
    uint256 internal nGames;
    /// @notice The games of one job, in one slot. `state`: 0 never disputed, 1 under dispute, 2 the
    ///         provider won every game so far, 3 the provider lost (final). `open`: games on the
    ///         job still open (any number of challengers). `first`: 1 + the id of the game that
    ///         opened the job's current dispute (opened when no other game on the job was open)
    ///         while that game is open, else 0; the slash reward of a lost job goes to its
    ///         challenger, so a provider caught by an auditor cannot redirect it to a sock puppet
    ///         by losing to the puppet first.
    struct JobGames {
        uint8 state;
        uint32 open;
        uint64 first;
    }

    /// @notice Per job key keccak256(abi.encode(batchId, jobIndex)).
    mapping(bytes32 => JobGames) public jobs;
    /// @dev Owed balances | KEPT (bit 255): open() keeps both parties' slots non-zero, and they never
    ///      return to zero, so the move that ends a game credits a warm slot, not a fresh one.
    mapping(address => uint256) internal oweds;
    uint256 internal constant KEPT = 1 << 255;
    /// @dev The books (totalBonds() + totalOwed() + totalBurned() = this contract's balance) and the
    ///      reentrancy lock, two per slot: a game's end moves its bond into owed beside it and burns
    ///      beside the lock (1 at rest), so it never pays for a fresh slot (docs/CHAIN.md "Gas").
    struct Books {
        uint128 bonds;
        uint128 owed;
        uint128 burned;
        uint128 locked;
    }

    Books internal books;

    event DisputeOpened(uint256 indexed gameId, uint256 indexed batchId, address indexed challenger, uint256 jobIndex);
    event Revealed(uint256 indexed gameId, uint8 level, uint64 index, bytes32[] children);
    event Chosen(uint256 indexed gameId, uint8 level, uint64 index, uint8 depthLeft);
    event PreRevealed(uint256 indexed gameId, uint8 level, uint64 leaf, bytes32 pre);
    event Expanded(uint256 indexed gameId, uint8 level, bytes32 root, uint8 depth, uint64 lastLeaf);
    /// @notice why: STEP_CHECKED (the judge executed the step), TIMED_OUT (the mover ran out of clock),
    ///         INCONSISTENT (the provider's own state breaks the program the descent points at),
    ///         UNDECIDABLE (an op the judge cannot check yet), JOB_LOST (voided: the job was lost in
    ///         another game; the challenger's bonds are returned and nothing else moves).
    event Resolved(uint256 indexed gameId, bool providerWon, uint8 why);
    event OpEntered(uint256 indexed gameId, uint64 op, bytes32 slotRoot, uint64 elements);
    event ElementNamed(uint256 indexed gameId, uint64 op, uint64 elem);
    event ChunkRevealed(uint256 indexed gameId, uint64 chunkIndex, bytes chunk);

    modifier nonReentrant() {
        // INVARIANT: no external call can re-enter a state-changing function.
        if (books.locked != 1) revert Reentrancy();
        books.locked = 2;
        _;
        books.locked = 1;
    }

    /// @notice Deploys against a Settlement contract (which must then `wire` this game) and a Machine.
    constructor(Settlement settlement_, IMachine machine_, Params memory params_) {
        // INVARIANT: shares are <= 100%, a game has a clock, and an increment cannot outgrow it.
        if (params_.rewardBps > 10_000) revert BadParameter("rewardBps");
        if (params_.clock == 0) revert BadParameter("clock");
        if (params_.increment > params_.clock) revert BadParameter("increment");
        CLOCK = params_.clock;
        INCREMENT = params_.increment;
        REWARD_BPS = params_.rewardBps;
        settlement = settlement_;
        registry = settlement_.registry();
        machine = machine_;
        params = params_;
        books.locked = 1;
    }

    /// @notice Withdrawable bonds and rewards of `account`.
    function owedTo(address account) external view returns (uint256) {
        return oweds[account] & (KEPT - 1);
    }

    /// @notice Challenger bonds held by open games.
    function totalBonds() external view returns (uint256) {
        return books.bonds;
    }

    /// @notice Withdrawable balances (owedTo) summed.
    function totalOwed() external view returns (uint256) {
        return books.owed;
    }

    /// @notice Bonds burned (the share of a lost challenger's bond not paid to the provider).
    function totalBurned() external view returns (uint256) {
        return books.burned;
    }


    /// @notice A game by id.
    function getGame(uint256 gameId) external view returns (Game memory) {
        return _game(gameId);
    }

    /// @notice Number of games opened so far.
    function gameCount() external view returns (uint256) {
        return nGames;
    }

    /// @notice Opens a dispute on job `jobIndex` of pending batch `batchId`; msg.value is the bond.
    ///         `proof` places the job's leaf under the batch root. Any number of challengers may
    ///         each open their own game on a job, during the batch's window or while another game
    ///         on the job is still open; never once the provider lost the job.
    function open(uint256 batchId, uint256 jobIndex, Settlement.ClaimItem calldata item, address client, uint128 amount, bytes32[] calldata proof)
        external
        payable
        returns (uint256 gameId)
    {
        // INVARIANT: the bond is exact and the job is in the batch (a sock puppet's open game blocks
        // nobody: each challenger plays its own).
        if (msg.value != params.challengerBond) revert BondMismatch(msg.value, params.challengerBond);
        if (jobIndex >> 64 != 0) revert NotInBatch();
        (address provider, bytes32 root) = settlement.onDisputeOpened(batchId, amount, _joinJob(batchId, jobIndex), client, msg.sender);
        if (!MerkleProof.verify(root, settlement.leafOf(item, client, amount), jobIndex, proof)) revert NotInBatch();
        books.bonds += uint128(msg.value);
        if (oweds[msg.sender] == 0) oweds[msg.sender] = KEPT;
        if (oweds[provider] == 0) oweds[provider] = KEPT;

        gameId = nGames;
        nGames = gameId + 1;
        Game storage g = games[gameId];
        g.provider = provider;
        g.challenger = msg.sender;
        g.client = client;
        g.jobAmount = amount;
        g.bond = uint128(msg.value);
        g.batchId = uint96(batchId);
        g.jobIndex = uint64(jobIndex);
        emit DisputeOpened(gameId, batchId, msg.sender, jobIndex);
        _start(g, item);
    }

    /// @dev Level 0: the descent starts at the receipt's trace root.
    function _start(Game storage g, Settlement.ClaimItem calldata item) internal {
        uint64 nLeaves = Bisection.traceLeafCount(item.nPrompt, item.nOutput, item.nLayer);
        uint8 depth = Bisection.treeDepth(nLeaves);
        g.lastMove = uint64(block.timestamp);
        g.providerClock = CLOCK;
        g.challengerClock = CLOCK;
        g.phase = REVEAL;
        g.depthLeft = depth;
        g.levelDepth = depth;
        g.lastLeaf = nLeaves - 1;
        g.node = item.traceRoot;
        g.levelRoot = item.traceRoot;
        // The state before trace leaf 0 is the job's input (docs/CHAIN.md).
        g.pre = item.req.promptRoot;
        // What the machine needs from the signed request and the receipt (the item is proven in the batch).
        g.modelRoot = item.req.modelRoot;
        g.traceRoot = item.traceRoot;
        g.promptRoot = item.req.promptRoot;
        g.outputRoot = item.outputRoot;
        g.nOutput = item.nOutput;
        g.paramsHash = item.req.paramsHash;
        g.seed = item.req.seed;
        g.nPrompt = item.nPrompt;
        g.nLayer = item.nLayer;
        if (depth == 0) _leafReached(g);
    }

    /// @notice Provider: reveals the 2^s nodes s = min(LOG_K, depthLeft) levels below the current node.
    function reveal(uint256 gameId, bytes32[] calldata children) external {
        Game storage g = _move(gameId, REVEAL);
        // INVARIANT: revealed children hash up to the node already committed.
        if (children.length != (uint256(1) << _stride(g)) || _subRoot(children) != g.node) revert BadReveal();
        g.phase = CHOOSE;
        emit Revealed(gameId, g.level, g.index, children);
    }

    /// @notice Challenger: picks child `choice` of the last reveal (passed again as `children`).
    ///         Its first choice at each level below the trace carries `depthBond` (msg.value).
    function choose(uint256 gameId, bytes32[] calldata children, uint256 choice) external payable {
        Game storage g = _move(gameId, CHOOSE);
        // INVARIANT: the challenger's bond grows by depthBond per level it drags the provider down.
        uint256 due = g.level > g.bondedLevel ? params.depthBond : 0;
        if (msg.value != due) revert BondMismatch(msg.value, due);
        if (due != 0) {
            g.bondedLevel = g.level;
            g.bond += uint128(due);
            books.bonds += uint128(due);
        }
        uint8 s = _stride(g);
        if (children.length != (uint256(1) << s) || _subRoot(children) != g.node) revert BadReveal();
        if (choice >= children.length) revert BadChoice(choice);
        (bool ok, uint64 index, uint8 left) = Bisection.descend(g.index, g.depthLeft, choice, g.minLeaf, g.lastLeaf);
        // INVARIANT: the chosen subtree holds at least one leaf the challenger may dispute.
        if (!ok) revert BadChoice(choice);
        g.index = index;
        g.depthLeft = left;
        g.node = children[choice];
        emit Chosen(gameId, g.level, index, left);
        if (left == 0) {
            _leafReached(g);
        } else {
            g.phase = REVEAL;
        }
    }

    /// @notice Provider: reveals the leaf before the disputed one, with its proof under the level root.
    function revealPre(uint256 gameId, bytes32 preLeaf, bytes32[] calldata proof) external {
        Game storage g = _move(gameId, REVEAL_PRE);
        if (proof.length != g.levelDepth || !MerkleProof.verify(g.levelRoot, preLeaf, g.index - 1, proof)) revert BadProof();
        g.pre = preLeaf;
        emit PreRevealed(gameId, g.level, g.index - 1, preLeaf);
        _segmentFound(g);
    }

    /// @notice A sub-trace commitment: a tree of depth `depth` whose leaf 0 is the disputed
    ///         transition's pre-state and leaf `lastLeaf` its post-state.
    struct Expansion {
        bytes32 root;
        uint8 depth;
        uint64 lastLeaf;
        bytes32[] proofFirst;
        bytes32[] proofLast;
    }

    /// @notice Provider: commits the frames of the disputed transition (level 1): leaf 0 is the
    ///         agreed pre trace leaf, leaf k the frame after op k, leaf n (n = the machine's op
    ///         count for this position and layer) the disputed trace leaf. `cfg` is checked here
    ///         against the registry and the signed request; the later moves pass the machine
    ///         context it makes (`IMachine.Ctx`: the game's roots, the leaf's position and layer,
    ///         `cfg`) unchanged.
    function expandOps(uint256 gameId, Cfg calldata cfg, Expansion calldata e) external {
        Game storage g = _move(gameId, EXPAND);
        // INVARIANT: the op level exists only below a trace leaf.
        if (g.level != 0) revert WrongStepKind();
        // INVARIANT: the config is the model root's own (registry) and the params the client's.
        if (sha256(abi.encode(cfg.config)) != registry.get(g.modelRoot).configHash) revert BadPreimage();
        if (sha256(abi.encode(cfg.sampling)) != g.paramsHash) revert BadPreimage();
        g.traceLeaf = g.index;
        IMachine.Ctx memory c = _ctx(g, cfg);
        // Later moves pass this context whole and it is checked against one slot: the deciding
        // move reads no roots, position or seed from storage (docs/MACHINE.md "Gas").
        g.cfgHash = keccak256(abi.encode(c));
        uint64 n = uint64(machine.opCount(c));
        // INVARIANT: the frame list has exactly one leaf per op of the table.
        if (e.lastLeaf != n) revert WrongLeafCount(e.lastLeaf, n);
        _expand(gameId, g, e);
    }

    /// @notice The token a sampled head leaf commits, opened against the claim's output root.
    struct OutputToken {
        uint32 token;
        bytes32 logitsRoot;
        MachineState.Opening opening;
    }

    /// @notice Provider: the disputed op is a one-step op (LOAD, STORE, TOKEN): `proof` opens what
    ///         the machine needs to check the post-state from the pre-state; the machine decides.
    ///         At the STORE of a sampled position's head, `out` also opens the head leaf's token
    ///         and the claim's output token at that position: they must be equal, so the tokens
    ///         the claim bills (and the client acknowledged) are the tokens the trace computed.
    function stepOp(uint256 gameId, IMachine.Ctx calldata c, bytes calldata proof, OutputToken calldata out) external {
        Game storage g = _move(gameId, EXPAND);
        // INVARIANT: an op is decided or entered once, at the op level.
        if (g.level != 1) revert WrongStepKind();
        _checkCtx(g, c);
        (bool oneStep,,,) = machine.op(c, g.index);
        // INVARIANT: only one-step ops are decided without naming an element.
        if (!oneStep) revert WrongStepKind();
        bool ok = machine.oneStep(c, g.index, g.pre, g.post, proof);
        if (ok && c.layer == c.config.nLayer && uint256(c.pos) + 1 >= g.nPrompt && g.index == g.lastLeaf) {
            // INVARIANT: `out` opens the agreed post-state's token, and the output root at its index.
            if (MachineState.headLeaf(c.pos, c.layer, out.token, out.logitsRoot) != g.post) revert BadPreimage();
            (bool opened, uint32 billed) = MachineState.word(g.outputRoot, g.nOutput, uint256(c.pos) + 1 - g.nPrompt, out.opening);
            if (!opened) revert BadProof();
            ok = billed == out.token;
        }
        _resolve(gameId, g, ok, STEP_CHECKED);
    }

    /// @notice Provider: opens the disputed op (not a one-step op): its post-frame is its
    ///         pre-frame with the op's slot changed from ZERO to `slotRoot` and nothing else
    ///         (`path`: the slot's 6 siblings, shared by both frames). Level 2 then bisects the
    ///         slot's own tree (256-word chunks, or one leaf per block), so the provider must
    ///         reveal its values down to the one the challenger disputes: a provider that
    ///         withholds its data cannot make the challenger guess. An op with no elements must
    ///         leave its slot ZERO.
    function enterOp(uint256 gameId, IMachine.Ctx calldata c, bytes32 slotRoot, bytes32[] calldata path) external {
        Game storage g = _move(gameId, EXPAND);
        if (g.level != 1) revert WrongStepKind();
        _checkCtx(g, c);
        (bool oneStep, uint8 slot, bool isBlock, uint64 length) = machine.op(c, g.index);
        if (oneStep) revert WrongStepKind();
        // INVARIANT: an op writes exactly its own slot, once.
        if (!MachineState.isUpdate(g.pre, g.post, slot, slotRoot, path)) revert BadProof();
        if (length == 0) {
            // Nothing to compute: the frames are equal unless the provider wrote the empty slot.
            _resolve(gameId, g, slotRoot == bytes32(0), slotRoot == bytes32(0) ? STEP_CHECKED : INCONSISTENT);
            return;
        }
        g.opK = g.index;
        g.frame = g.pre;
        g.slotRoot = slotRoot;
        g.elemCount = length;
        g.slotIsBlock = isBlock;
        uint64 leaves = isBlock ? length : (length + 255) / 256;
        uint8 depth = Bisection.treeDepth(leaves);
        g.level = 2;
        g.levelRoot = slotRoot;
        g.levelDepth = depth;
        g.node = slotRoot;
        g.depthLeft = depth;
        g.index = 0;
        g.minLeaf = 0;
        g.lastLeaf = leaves - 1;
        g.phase = REVEAL;
        emit OpEntered(gameId, g.opK, slotRoot, length);
        if (depth == 0) _leafReached(g);
    }

    /// @notice Provider: reveals the chunk of the disputed op's word slot that the level-2
    ///         bisection reached (its preimage: 256 words, or the shorter last chunk); the
    ///         challenger then names an element in it.
    function revealChunk(uint256 gameId, bytes calldata chunk) external {
        Game storage g = _move(gameId, CHUNK);
        uint256 first = uint256(g.index) * 256;
        uint256 words = g.elemCount - first < 256 ? g.elemCount - first : 256;
        // INVARIANT: the chunk is the reached leaf's preimage, of the length the slot gives it.
        if (chunk.length != words * 4 || MerkleProof.leafHash(chunk) != g.post) revert BadPreimage();
        g.phase = NAME;
        emit ChunkRevealed(gameId, g.index, chunk);
    }

    /// @notice Challenger: names the element of the reached chunk (or the reached block) it
    ///         disagrees with; carries `depthBond` unless its choices at this level already did.
    ///         Elements of one op depend only on the agreed pre-frame, so any one decides.
    function nameElement(uint256 gameId, uint64 elem) external payable {
        Game storage g = _move(gameId, NAME);
        // INVARIANT: each level the challenger drags the provider down costs one depth bond.
        uint256 due = g.level > g.bondedLevel ? params.depthBond : 0;
        if (msg.value != due) revert BondMismatch(msg.value, due);
        if (elem >= g.elemCount || (g.slotIsBlock ? elem != g.index : elem / 256 != g.index)) revert BadChoice(elem);
        g.bondedLevel = g.level;
        g.bond += uint128(msg.value);
        books.bonds += uint128(msg.value);
        g.elem = elem;
        g.phase = EXPAND;
        emit ElementNamed(gameId, g.opK, elem);
    }

    /// @notice Provider: commits the named element's micro-states (level 2): leaf 0 is the initial
    ///         state the machine computes, leaf `steps` the final state `last`, whose result must be
    ///         the slot's element (`opening` proves it under the slot root).
    function expandElement(uint256 gameId, IMachine.Ctx calldata c, Expansion calldata e, MachineState.MicroState calldata last, bytes calldata opening)
        external
    {
        Game storage g = _move(gameId, EXPAND);
        // INVARIANT: an element is expanded once, after it was named.
        if (g.level != 2) revert WrongStepKind();
        _checkCtx(g, c);
        (uint64 steps, bytes32 init) = machine.element(c, g.opK, g.elem);
        if (e.lastLeaf != steps) revert WrongLeafCount(e.lastLeaf, steps);
        bytes32 lastLeaf = MachineState.leafOf(last);
        // INVARIANT: the final state is the named element's, and its result is what the slot holds.
        if (last.op != g.opK || last.elem != g.elem || last.step != steps || !machine.result(c, g.opK, g.slotRoot, last, opening)) {
            _resolve(gameId, g, false, INCONSISTENT);
            return;
        }
        if (steps == 0) {
            // A program of no steps: its final state is its initial state.
            _resolve(gameId, g, lastLeaf == init, STEP_CHECKED);
            return;
        }
        g.pre = init;
        g.post = lastLeaf;
        _expand(gameId, g, e);
    }

    /// @notice Provider: executes the disputed micro-step. `c` is the machine context fixed at
    ///         expandOps, `frame` the disputed op's pre-frame, `post` the disputed leaf; `pre`
    ///         opens the agreed state before it (the initial state for step 1); `reads` open every
    ///         value the step reads. The provider wins iff the machine's post-state is `post`.
    function stepMicro(
        uint256 gameId,
        IMachine.Ctx calldata c,
        bytes32 frame,
        bytes32 post,
        MachineState.MicroState calldata pre,
        bytes[] calldata reads
    ) external {
        Game storage g = _move(gameId, STEP);
        // INVARIANT: the context, the op's pre-frame, the agreed state (of the named element, one
        // step before the disputed leaf: a provider that committed a state of another computation
        // cannot step) and the disputed one are the game's: the step's phase keeps their hash in
        // one slot (`_segmentFound`).
        bytes32 h = keccak256(abi.encode(keccak256(abi.encode(c)), frame, MachineState.leafOf(pre), post, pre.op, pre.elem, pre.step + 1));
        if (h != g.node) revert BadPreimage();
        _resolve(gameId, g, machine.step(c, frame, pre, reads) == post, STEP_CHECKED);
    }

    function _expand(uint256 gameId, Game storage g, Expansion calldata e) internal {
        // INVARIANT: the finer sub-trace starts and ends exactly at the disputed transition's states.
        if (e.depth > 48 || e.lastLeaf == 0 || e.lastLeaf >= (uint256(1) << e.depth)) revert BadProof();
        if (e.proofFirst.length != e.depth || e.proofLast.length != e.depth) revert BadProof();
        if (!MerkleProof.verify(e.root, g.pre, 0, e.proofFirst) || !MerkleProof.verify(e.root, g.post, e.lastLeaf, e.proofLast)) revert BadProof();
        g.level++;
        g.levelRoot = e.root;
        g.levelDepth = e.depth;
        g.node = e.root;
        g.depthLeft = e.depth;
        g.index = 0;
        g.minLeaf = 1;
        g.lastLeaf = e.lastLeaf;
        g.phase = REVEAL;
        emit Expanded(gameId, g.level, e.root, e.depth, e.lastLeaf);
    }

    /// @notice Anyone: ends a game whose party to move ran out of clock; that party loses. Also
    ///         ends at once a game whose job the provider already lost in another game (voided:
    ///         the challenger's bonds come back, nothing else moves).
    function timeout(uint256 gameId) external {
        Game storage g = _game(gameId);
        if (_over(g.phase)) revert GameOver(gameId);
        if (jobs[_jobKey(g)].state == LOST) {
            _resolve(gameId, g, false, JOB_LOST);
            return;
        }
        bool providerTurn = _providerTurn(g.phase);
        uint64 clock = providerTurn ? g.providerClock : g.challengerClock;
        uint64 spent = uint64(block.timestamp) - g.lastMove;
        // INVARIANT: a clock only ends the game once it is fully spent.
        if (spent <= clock) revert ClockRunning(gameId, clock - spent);
        _resolve(gameId, g, !providerTurn, TIMED_OUT);
    }

    /// @notice Withdraws bonds and rewards owed to the caller.
    function withdraw() external nonReentrant {
        uint256 amount = oweds[msg.sender] & (KEPT - 1);
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        oweds[msg.sender] = KEPT;
        books.owed -= uint128(amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    // ---------------------------------------------------------------- internals

    function _game(uint256 gameId) internal view returns (Game storage) {
        Game storage g = games[gameId];
        // INVARIANT: only opened games move (_start sets a phase, and no phase is 0).
        if (g.phase == 0) revert UnknownGame(gameId);
        return g;
    }

    /// @dev Checks phase, turn and clock, and charges the mover's clock; the move then earns the
    ///      increment (Fischer), capped at the full clock, so every move has at least `increment`
    ///      seconds however long the game, and a whole game still ends in bounded time.
    function _move(uint256 gameId, uint8 phase) internal returns (Game storage g) {
        g = _game(gameId);
        if (_over(g.phase)) revert GameOver(gameId);
        if (g.phase != phase) revert WrongPhase(gameId, g.phase);
        bool providerTurn = _providerTurn(phase);
        // INVARIANT: only the party whose turn it is moves.
        if (msg.sender != (providerTurn ? g.provider : g.challenger)) revert NotYourTurn(gameId, msg.sender);
        uint64 spent = uint64(block.timestamp) - g.lastMove;
        if (providerTurn) {
            if (spent > g.providerClock) revert ClockExpired(gameId);
            g.providerClock = _credit(g.providerClock - spent);
        } else {
            if (spent > g.challengerClock) revert ClockExpired(gameId);
            g.challengerClock = _credit(g.challengerClock - spent);
        }
        g.lastMove = uint64(block.timestamp);
    }

    /// @dev Counts the game about to be opened on the job; true when it is the job's only open game
    ///      (it then opens the job's dispute and is recorded as the first).
    function _joinJob(uint256 batchId, uint256 jobIndex) internal returns (bool first) {
        JobGames storage j = jobs[keccak256(abi.encode(batchId, jobIndex))];
        // INVARIANT: a job is never disputed again once its provider lost it.
        if (j.state == LOST) revert LeafAlreadyDisputed(batchId, jobIndex);
        first = j.open == 0;
        j.open += 1;
        j.state = UNDER_DISPUTE;
        if (first) j.first = uint64(nGames + 1);
    }

    function _credit(uint64 left) internal view returns (uint64) {
        uint64 c = left + INCREMENT;
        return c > CLOCK ? CLOCK : c;
    }

    function _jobKey(Game storage g) internal view returns (bytes32) {
        return keccak256(abi.encode(g.batchId, uint256(g.jobIndex)));
    }

    function _over(uint8 phase) internal pure returns (bool) {
        return phase == PROVIDER_WON || phase == CHALLENGER_WON;
    }

    function _providerTurn(uint8 phase) internal pure returns (bool) {
        return phase != CHOOSE && phase != NAME;
    }

    /// @dev The machine's context of the disputed trace leaf.
    function _ctx(Game storage g, Cfg calldata cfg) internal view returns (IMachine.Ctx memory) {
        uint64 leaves = uint64(g.nLayer) + 1;
        return IMachine.Ctx(
            g.modelRoot, g.traceRoot, g.promptRoot, g.nPrompt, uint32(g.traceLeaf / leaves), uint32(g.traceLeaf % leaves), g.seed,
            cfg.config, cfg.sampling
        );
    }

    /// @dev Below the trace level the mover passes the machine context whole: it must be the one
    ///      fixed at expandOps (the game's roots, the disputed leaf's position and layer, the proven
    ///      config and params), so nothing of it is read from storage again.
    function _checkCtx(Game storage g, IMachine.Ctx calldata c) internal view {
        // INVARIANT: below the trace level the provider keeps the context it proved.
        if (g.level == 0 || keccak256(abi.encode(c)) != g.cfgHash) revert BadPreimage();
    }

    function _stride(Game storage g) internal view returns (uint8) {
        return Bisection.stride(g.depthLeft);
    }

    /// @dev Root of a full power-of-two list of nodes.
    function _subRoot(bytes32[] calldata nodes) internal view returns (bytes32) {
        bytes32[] memory level = nodes;
        return MerkleRoot.rootInPlace(level);
    }

    function _leafReached(Game storage g) internal {
        g.post = g.node;
        // Leaf minLeaf's predecessor is the level's entry state, already agreed; others are revealed.
        // The slot level has no states in order: its leaves are the values themselves.
        if (g.level == 2 || g.index == g.minLeaf) _segmentFound(g);
        else g.phase = REVEAL_PRE;
    }

    /// @dev Level 0 and 1 leaves are expanded (expandOps; enterOp or stepOp), level 2 leaves stepped.
    ///      At the step, the node (no longer needed) keeps the hash of what the deciding move checks
    ///      (context, pre-frame, pre- and post-state, op, element, step): that move reads one slot,
    ///      not six.
    function _segmentFound(Game storage g) internal {
        if (g.level == 2) {
            g.phase = g.slotIsBlock ? NAME : CHUNK;
        } else if (g.level + 1 == LEVELS) {
            g.phase = STEP;
            g.node = keccak256(abi.encode(g.cfgHash, g.frame, g.pre, g.post, g.opK, g.elem, g.index));
        } else {
            g.phase = EXPAND;
        }
    }

    /// @dev Ends a game. On a job the provider already lost elsewhere the game is voided whatever
    ///      `providerWon` says: the challenger gets its bonds back, and the job is neither
    ///      refunded nor slashed a second time.
    function _resolve(uint256 gameId, Game storage g, bool providerWon, uint8 why) internal {
        JobGames storage j = jobs[_jobKey(g)];
        uint32 left = j.open - 1;
        j.open = left;
        uint8 outcome;
        if (j.state == LOST) {
            providerWon = false;
            why = JOB_LOST;
            outcome = 3; // Settlement.VOIDED
        } else if (providerWon) {
            if (left == 0) j.state = DEFENDED;
            outcome = 1; // Settlement.PROVIDER_WON
        } else {
            j.state = LOST;
            outcome = 2; // Settlement.PROVIDER_LOST
        }
        g.phase = providerWon ? PROVIDER_WON : CHALLENGER_WON;
        uint256 bond = g.bond;
        books.bonds -= uint128(bond);
        if (providerWon) {
            uint256 reward = bond * REWARD_BPS / 10_000;
            oweds[g.provider] = (oweds[g.provider] + reward) | KEPT;
            books.owed += uint128(reward);
            books.burned += uint128(bond - reward);
        } else {
            oweds[g.challenger] = (oweds[g.challenger] + bond) | KEPT;
            books.owed += uint128(bond);
        }
        // The client and the slash reward's beneficiary matter to a lost job only: other outcomes
        // pass zero and spare their reads.
        bool lost = outcome == 2;
        address bountyTo = _bountyTo(j, gameId, g, lost);
        settlement.onDisputeResolved(g.batchId, g.provider, outcome, lost ? g.client : address(0), g.jobAmount, bountyTo, left == 0);
        emit Resolved(gameId, providerWon, why);
    }

    /// @dev Who gets a lost job's slash reward: the challenger of the game that opened the job's
    ///      dispute if it is still open (it flagged the job first), else this game's. Clears the
    ///      record when the first game itself ends. Zero unless `lost` (nobody is rewarded).
    function _bountyTo(JobGames storage j, uint256 gameId, Game storage g, bool lost) internal returns (address) {
        uint256 first = j.first;
        if (first == gameId + 1) {
            j.first = 0;
            first = 0;
        }
        if (!lost) return address(0);
        return first == 0 ? g.challenger : games[first - 1].challenger;
    }
}

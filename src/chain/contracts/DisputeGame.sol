// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import "./Errors.sol";
import {Settlement} from "./Settlement.sol";
import {MerkleProof} from "./lib/MerkleProof.sol";
import {MerkleRoot} from "./MerkleRoot.sol";
import {OneStep} from "./OneStep.sol";
import {Judge} from "./Judge.sol";
import {Bisection} from "./Bisection.sol";
import {OpTable} from "./OpTable.sol";

/// @title DisputeGame: hierarchical k-ary bisection down to one primitive step
/// @notice A challenger bonds and disputes one job of a pending batch. Level 0 descends the
///         receipt's trace tree (leaf = one (position, layer) state); at each lower level (op,
///         element, primitive) the provider commits a sub-trace whose first and last leaves are the
///         disputed transition's pre- and post-state, and the descent repeats. Each descent round
///         the provider reveals the 2^LOG_K nodes LOG_K levels below the current node and the
///         challenger picks one. At the primitive level the provider reveals the micro-step and
///         the Judge executes it. Chess clocks: a party whose clock runs out loses.
///         The judge derives what a transition computes from where the descent went (OpTable):
///         a matmul op's tensor is proven by name, its element leaves are output rows on the op's
///         activation state, and their primitive leaves are the row's blocks then the SUM8 fold,
///         so a provider cannot prove a correct step of some other computation. An op the judge
///         cannot check yet upholds the provider. The challenger adds `depthBond` at each level
///         below the trace. Protocol: docs/CHAIN.md "Dispute game".
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
        uint256 batchId;
        bytes32 node; // current node of the descent
        bytes32 levelRoot;
        bytes32 pre; // state before the disputed transition (level entry: before leaf minLeaf)
        bytes32 post; // the disputed post-state once a leaf is reached
        bytes32 modelRoot; // the signed request's model root (BLOCK_TERM weight proofs)
        // Where the descent went (OpTable): the disputed trace leaf, op leaf and element leaf.
        uint32 nLayer;
        uint64 traceLeaf;
        uint64 opLeaf;
        uint64 elemLeaf;
        uint8 bondedLevel; // deepest level the challenger has bonded (0: the opening bond)
        uint8 bound; // UNBOUND, or BLOCK_ROW / FLOAT_ROW once a matmul op's tensor is proven
        // The proven tensor of a matmul op, and the disputed element's claimed value.
        uint32 tensorIndex;
        uint32 ggmlType;
        uint64 rows;
        uint64 cols;
        uint32 elemValue;
        bytes32 rowRoot;
        bytes32 act; // the activation state the bound matmul multiplies
    }

    uint8 public constant STEP_CHECKED = 1;
    uint8 public constant TIMED_OUT = 2;
    uint8 public constant INCONSISTENT = 3;
    uint8 public constant UNDECIDABLE = 4;
    uint8 public constant JOB_LOST = 5; // voided: the provider lost the job in another game

    /// @notice jobState values.
    uint8 internal constant UNDER_DISPUTE = 1;
    uint8 internal constant DEFENDED = 2;
    uint8 internal constant LOST = 3;

    uint8 internal constant UNBOUND = 0;
    uint8 internal constant BLOCK_ROW = 1; // quantized weights: primitive leaves = blocks, then the fold
    uint8 internal constant FLOAT_ROW = 2; // float weights: primitive steps not bound (UNDECIDABLE)

    uint8 public constant LOG_K = 4; // k = 16 children per round
    uint8 public constant LEVELS = 4; // trace, op, element, primitive

    // Phases; the first four are the provider's turn, CHOOSE is the challenger's.
    uint8 public constant REVEAL = 1;
    uint8 public constant REVEAL_PRE = 2;
    uint8 public constant EXPAND = 3;
    uint8 public constant STEP = 4;
    uint8 public constant CHOOSE = 5;
    uint8 public constant PROVIDER_WON = 6;
    uint8 public constant CHALLENGER_WON = 7;

    Settlement public immutable settlement;
    /// @notice The one-step checks (a separate contract, to stay under the code size limit).
    Judge public immutable judge;
    Params internal params;
    /// @dev Copies of params.clock and params.increment that every move reads without an SLOAD.
    uint64 internal immutable CLOCK;
    uint64 internal immutable INCREMENT;
    Game[] internal games;
    /// @notice Per job key keccak256(abi.encode(batchId, jobIndex)): 0 never disputed, 1 under
    ///         dispute, 2 the provider won every game so far, 3 the provider lost (final).
    mapping(bytes32 => uint8) public jobState;
    /// @notice Per job key: games on the job that are still open (any number of challengers).
    mapping(bytes32 => uint32) public openGames;
    mapping(address => uint256) public owedTo;
    uint256 public totalBonds;
    uint256 public totalOwed;
    uint256 public totalBurned;
    uint256 internal locked = 1;

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
    event TensorBound(uint256 indexed gameId, uint32 tensorIndex, uint64 rows, uint64 cols);

    modifier nonReentrant() {
        // INVARIANT: no external call can re-enter a state-changing function.
        if (locked != 1) revert Reentrancy();
        locked = 2;
        _;
        locked = 1;
    }

    /// @notice Deploys against a Settlement contract (which must then `wire` this game) and a Judge.
    constructor(Settlement settlement_, Judge judge_, Params memory params_) {
        // INVARIANT: shares are <= 100%, a game has a clock, and an increment cannot outgrow it.
        if (params_.rewardBps > 10_000) revert BadParameter("rewardBps");
        if (params_.clock == 0) revert BadParameter("clock");
        if (params_.increment > params_.clock) revert BadParameter("increment");
        CLOCK = params_.clock;
        INCREMENT = params_.increment;
        settlement = settlement_;
        judge = judge_;
        params = params_;
    }

    /// @notice The game parameters.
    function getParams() external view returns (Params memory) {
        return params;
    }

    /// @notice A game by id.
    function getGame(uint256 gameId) external view returns (Game memory) {
        return _game(gameId);
    }

    /// @notice Number of games opened so far.
    function gameCount() external view returns (uint256) {
        return games.length;
    }

    /// @notice Depth of the padded binary tree over `n` leaves (0 for one leaf).
    function treeDepth(uint256 n) public pure returns (uint8) {
        return Bisection.treeDepth(n);
    }

    /// @notice Trace leaves of a receipt: one per (position, layer) plus one head leaf per
    ///         position, over the nPrompt + nOutput - 1 positions the model was run on.
    function traceLeafCount(uint32 nPrompt, uint32 nOutput, uint32 nLayer) public pure returns (uint64) {
        return Bisection.traceLeafCount(nPrompt, nOutput, nLayer);
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
        // INVARIANT: the bond is exact, the job is in the batch, and a job is never disputed again
        // once its provider lost (a sock puppet's open game blocks nobody: each challenger plays its own).
        if (msg.value != params.challengerBond) revert BondMismatch(msg.value, params.challengerBond);
        if (jobIndex >> 64 != 0) revert NotInBatch();
        bytes32 key = keccak256(abi.encode(batchId, jobIndex));
        if (jobState[key] == LOST) revert LeafAlreadyDisputed(batchId, jobIndex);
        uint32 open_ = openGames[key];
        (address provider, bytes32 root) = settlement.onDisputeOpened(batchId, amount, open_ == 0);
        if (!MerkleProof.verify(root, settlement.leafOf(item, client, amount), jobIndex, proof)) revert NotInBatch();
        openGames[key] = open_ + 1;
        jobState[key] = UNDER_DISPUTE;
        totalBonds += msg.value;

        gameId = games.length;
        Game storage g = games.push();
        g.provider = provider;
        g.challenger = msg.sender;
        g.client = client;
        g.jobAmount = amount;
        g.bond = uint128(msg.value);
        g.batchId = batchId;
        g.jobIndex = uint64(jobIndex);
        emit DisputeOpened(gameId, batchId, msg.sender, jobIndex);
        _start(g, item);
    }

    /// @dev Level 0: the descent starts at the receipt's trace root.
    function _start(Game storage g, Settlement.ClaimItem calldata item) internal {
        uint64 nLeaves = traceLeafCount(item.nPrompt, item.nOutput, item.nLayer);
        uint8 depth = treeDepth(nLeaves);
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
        // What the one-step judge needs from the signed request (the item is proven in the batch).
        g.modelRoot = item.req.modelRoot;
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
            totalBonds += due;
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
            // The judge has no one-step for this op yet (docs/CHAIN.md "What the judge checks"): an
            // honest provider could not answer below it, so the game upholds the provider here.
            if (_undecidable(g)) _resolve(gameId, g, true, UNDECIDABLE);
            else _leafReached(g);
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

    /// @notice Provider: commits the op list below the disputed trace leaf (OpTable: 15 ops for a
    ///         layer, 3 for a head). Lower levels are entered with expandTensor and expandElement.
    function expand(uint256 gameId, Expansion calldata e) external {
        Game storage g = _move(gameId, EXPAND);
        // INVARIANT: below the trace level only the bound expansions (tensor, element) exist.
        if (g.level != 0) revert WrongStepKind();
        uint64 ops = OpTable.lastLeaf(_isHead(g));
        if (e.lastLeaf != ops) revert WrongLeafCount(e.lastLeaf, ops);
        g.traceLeaf = g.index;
        _expand(gameId, g, e);
    }

    /// @notice Provider: enters matmul op `g.index` (OpTable) with its weight tensor, proven by name
    ///         under the job's model root; the element sub-trace has one leaf per output row. The
    ///         activation it multiplies is the op's pre-state when that is the activation source's
    ///         state (Q, attn_output, gate, down, logits); otherwise (K, V, up) the pre-state is the
    ///         previous matmul's last element state, opened as `opPre`, which names it.
    function expandTensor(uint256 gameId, Expansion calldata e, OneStep.TensorLeaf calldata t, OneStep.ElementState calldata opPre) external {
        Game storage g = _move(gameId, EXPAND);
        bool head = _isHead(g);
        // INVARIANT: a matmul's weights are the tensor the op table names for this layer, proven in the model.
        if (g.level != 1 || OpTable.kind(head, g.index) != OpTable.MATMUL) revert WrongStepKind();
        if (!OpTable.isTensorOf(head, _layer(g), g.index, t.name)) revert BadTensorProof(t.tensorIndex);
        judge.tensor(g.modelRoot, t);
        if (e.lastLeaf != t.rows) revert WrongLeafCount(e.lastLeaf, t.rows);
        (uint256 blockBytes,) = OneStep.blockShape(t.ggmlType);
        g.bound = blockBytes == 0 ? FLOAT_ROW : BLOCK_ROW;
        // INVARIANT: the activation is the state of the op the table names as this matmul's source.
        if (OpTable.actSource(head, g.index) + 1 == g.index) {
            g.act = g.pre;
        } else {
            if (OneStep.elementLeafOf(opPre) != g.pre) revert BadPreimage();
            g.act = opPre.act;
        }
        g.opLeaf = g.index;
        g.tensorIndex = t.tensorIndex;
        g.ggmlType = t.ggmlType;
        g.rows = t.rows;
        g.cols = t.cols;
        g.rowRoot = t.rowRoot;
        emit TensorBound(gameId, t.tensorIndex, t.rows, t.cols);
        _expand(gameId, g, e);
    }

    /// @notice Provider: enters the disputed element (output row g.index - 1) of a quantized matmul
    ///         op, opening its element state; the primitive sub-trace is the row's cols / B block
    ///         states followed by the element state (leaf cols / B + 1, reached by the fold).
    function expandElement(uint256 gameId, Expansion calldata e, OneStep.ElementState calldata s) external {
        Game storage g = _move(gameId, EXPAND);
        if (g.level != 2 || g.bound != BLOCK_ROW) revert WrongStepKind();
        if (OneStep.elementLeafOf(s) != g.post) revert BadPreimage();
        // INVARIANT: element j is output row j - 1, chains from the agreed state before it and
        // multiplies the op's agreed activation.
        if (s.row + 1 != g.index || s.prev != g.pre || s.act != g.act) {
            _resolve(gameId, g, false, INCONSISTENT);
            return;
        }
        (, uint256 actBytes) = OneStep.blockShape(g.ggmlType);
        uint64 steps = uint64(g.cols / actBytes) + 1;
        if (e.lastLeaf != steps) revert WrongLeafCount(e.lastLeaf, steps);
        g.elemLeaf = g.index;
        g.elemValue = s.value;
        _expand(gameId, g, e);
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

    /// @notice Provider: reveals a disputed BLOCK_TERM micro-state (and block b - 1's when b > 0)
    ///         with the chunk of the bound tensor's row that holds the block, proven under the
    ///         tensor's row root; the contract recomputes the block term and the SUM8 lane and
    ///         decides the game. Primitive leaf i (1 <= i <= cols / B) is block i - 1 of output row
    ///         elemLeaf - 1 of the bound tensor; a state naming anything else loses.
    ///         `act` opens the agreed activation state; `actPath` places the block's (da, qa) in it.
    function stepBlockTerm(
        uint256 gameId,
        OneStep.BlockStep calldata pre,
        OneStep.BlockStep calldata post,
        OneStep.ChunkProof calldata w,
        OneStep.ActState calldata act,
        bytes32[] calldata actPath
    ) external {
        Game storage g = _move(gameId, STEP);
        if (g.bound != BLOCK_ROW || g.index == g.lastLeaf) revert WrongStepKind();
        if (OneStep.blockLeafOf(post) != g.post) revert BadPreimage();
        // INVARIANT: the lanes a block starts from are the agreed pre-state's (block 0: all zero).
        if (post.blockIndex > 0 && OneStep.blockLeafOf(pre) != g.pre) revert BadPreimage();
        // INVARIANT: the micro-state is the block, row and tensor the descent points at.
        if (post.tensorIndex != g.tensorIndex || post.row + 1 != g.elemLeaf || uint256(post.blockIndex) + 1 != g.index) {
            _resolve(gameId, g, false, INCONSISTENT);
            return;
        }
        if (OneStep.actLeafOf(act) != g.act) revert BadPreimage();
        (, uint256 actBytes) = OneStep.blockShape(g.ggmlType);
        bytes32 actRoot = actBytes == 32 ? act.root32 : act.root256;
        bool ok = judge.blockTerm(Judge.BoundRow(g.ggmlType, g.rows, g.cols, g.rowRoot, actRoot), pre, post, w, actPath);
        _resolve(gameId, g, ok, STEP_CHECKED);
    }

    /// @notice Provider: the last primitive leaf of a quantized row is the element state itself;
    ///         reveals the last block's state (the agreed pre-state) and the contract folds its
    ///         eight SUM8 lanes and compares with the element's value.
    function stepFold(uint256 gameId, OneStep.BlockStep calldata last) external {
        Game storage g = _move(gameId, STEP);
        if (g.bound != BLOCK_ROW || g.index != g.lastLeaf) revert WrongStepKind();
        if (OneStep.blockLeafOf(last) != g.pre) revert BadPreimage();
        bool ok = last.tensorIndex == g.tensorIndex && last.row + 1 == g.elemLeaf && uint256(last.blockIndex) + 2 == g.index
            && judge.fold(last.acc) == g.elemValue;
        _resolve(gameId, g, ok, STEP_CHECKED);
    }

    /// @notice Anyone: ends a game whose party to move ran out of clock; that party loses. Also
    ///         ends at once a game whose job the provider already lost in another game (voided:
    ///         the challenger's bonds come back, nothing else moves).
    function timeout(uint256 gameId) external {
        Game storage g = _game(gameId);
        if (g.phase >= PROVIDER_WON) revert GameOver(gameId);
        if (jobState[_jobKey(g)] == LOST) {
            _resolve(gameId, g, false, JOB_LOST);
            return;
        }
        bool providerTurn = g.phase != CHOOSE;
        uint64 clock = providerTurn ? g.providerClock : g.challengerClock;
        uint64 spent = uint64(block.timestamp) - g.lastMove;
        // INVARIANT: a clock only ends the game once it is fully spent.
        if (spent <= clock) revert ClockRunning(gameId, clock - spent);
        _resolve(gameId, g, !providerTurn, TIMED_OUT);
    }

    /// @notice Withdraws bonds and rewards owed to the caller.
    function withdraw() external nonReentrant {
        uint256 amount = owedTo[msg.sender];
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        owedTo[msg.sender] = 0;
        totalOwed -= amount;
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    // ---------------------------------------------------------------- internals

    function _game(uint256 gameId) internal view returns (Game storage) {
        if (gameId >= games.length) revert UnknownGame(gameId);
        return games[gameId];
    }

    /// @dev Checks phase, turn and clock, and charges the mover's clock; the move then earns the
    ///      increment (Fischer), capped at the full clock, so every move has at least `increment`
    ///      seconds however long the game, and a whole game still ends in bounded time.
    function _move(uint256 gameId, uint8 phase) internal returns (Game storage g) {
        g = _game(gameId);
        if (g.phase >= PROVIDER_WON) revert GameOver(gameId);
        if (g.phase != phase) revert WrongPhase(gameId, g.phase);
        bool providerTurn = phase != CHOOSE;
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

    function _credit(uint64 left) internal view returns (uint64) {
        uint64 c = left + INCREMENT;
        return c > CLOCK ? CLOCK : c;
    }

    function _jobKey(Game storage g) internal view returns (bytes32) {
        return keccak256(abi.encode(g.batchId, uint256(g.jobIndex)));
    }

    /// @dev True at a leaf the judge cannot decide yet: an op other than a matmul, or an element
    ///      of a float-weight matmul (its primitive steps are not bound).
    function _undecidable(Game storage g) internal view returns (bool) {
        if (g.level == 1) return OpTable.kind(_isHead(g), g.index) != OpTable.MATMUL;
        return g.level == 2 && g.bound == FLOAT_ROW;
    }

    /// @dev True when the disputed trace leaf (or, at level 0, the current leaf) is a head leaf.
    function _isHead(Game storage g) internal view returns (bool) {
        uint64 leaf = g.level == 0 ? g.index : g.traceLeaf;
        return leaf % (uint64(g.nLayer) + 1) == g.nLayer;
    }

    /// @dev The layer of the disputed trace leaf.
    function _layer(Game storage g) internal view returns (uint256) {
        return g.traceLeaf % (uint64(g.nLayer) + 1);
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
        if (g.index == g.minLeaf) _segmentFound(g);
        else g.phase = REVEAL_PRE;
    }

    function _segmentFound(Game storage g) internal {
        g.phase = g.level + 1 == LEVELS ? STEP : EXPAND;
    }

    /// @dev Ends a game. On a job the provider already lost elsewhere the game is voided whatever
    ///      `providerWon` says: the challenger gets its bonds back, and the job is neither
    ///      refunded nor slashed a second time.
    function _resolve(uint256 gameId, Game storage g, bool providerWon, uint8 why) internal {
        bytes32 key = _jobKey(g);
        uint32 left = openGames[key] - 1;
        openGames[key] = left;
        uint8 outcome;
        if (jobState[key] == LOST) {
            providerWon = false;
            why = JOB_LOST;
            outcome = 3; // Settlement.VOIDED
        } else if (providerWon) {
            if (left == 0) jobState[key] = DEFENDED;
            outcome = 1; // Settlement.PROVIDER_WON
        } else {
            jobState[key] = LOST;
            outcome = 2; // Settlement.PROVIDER_LOST
        }
        g.phase = providerWon ? PROVIDER_WON : CHALLENGER_WON;
        uint256 bond = g.bond;
        totalBonds -= bond;
        if (providerWon) {
            uint256 reward = bond * params.rewardBps / 10_000;
            owedTo[g.provider] += reward;
            totalOwed += reward;
            totalBurned += bond - reward;
        } else {
            owedTo[g.challenger] += bond;
            totalOwed += bond;
        }
        settlement.onDisputeResolved(g.batchId, outcome, g.client, g.jobAmount, g.challenger, left == 0);
        emit Resolved(gameId, providerWon, why);
    }
}

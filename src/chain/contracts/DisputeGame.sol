// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import "./Errors.sol";
import {Settlement} from "./Settlement.sol";
import {MerkleProof} from "./lib/MerkleProof.sol";
import {MerkleRoot} from "./MerkleRoot.sol";
import {OneStep} from "./OneStep.sol";
import {Bisection} from "./Bisection.sol";

/// @title DisputeGame: hierarchical k-ary bisection down to one primitive step
/// @notice A challenger bonds and disputes one job of a pending batch. Level 0 descends the
///         receipt's trace tree (leaf = one (position, layer) state); at each lower level (op,
///         element, primitive) the provider commits a sub-trace whose first and last leaves are the
///         disputed transition's pre- and post-state, and the descent repeats. Each descent round
///         the provider reveals the 2^LOG_K nodes LOG_K levels below the current node and the
///         challenger picks one. At the primitive level the provider reveals the micro-step and
///         the contract executes it (OneStep). Chess clocks: a party whose clock runs out loses.
///         Protocol: docs/CHAIN.md "Dispute game".
contract DisputeGame {
    /// @notice Game parameters, fixed at deployment.
    struct Params {
        uint128 challengerBond;
        uint64 clock; // seconds each party may spend thinking, over the whole game
        uint32 rewardBps; // share of the challenger's bond paid to a provider who wins
    }

    struct Game {
        address provider;
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
        uint64 seed; // the signed request's sampling seed (RAND steps)
        uint256 batchId;
        uint256 jobIndex;
        bytes32 node; // current node of the descent
        bytes32 levelRoot;
        bytes32 pre; // state before the disputed transition (level entry: before leaf minLeaf)
        bytes32 post; // the disputed post-state once a leaf is reached
        bytes32 modelRoot; // the signed request's model root (BLOCK_TERM weight proofs)
    }

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
    Params internal params;
    Game[] internal games;
    /// @notice Per (batchId, job index): 0 never disputed, 1 under dispute, 2 provider won, 3 provider lost.
    mapping(bytes32 => uint8) public jobState;
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
    event Resolved(uint256 indexed gameId, bool providerWon, string reason);

    modifier nonReentrant() {
        // INVARIANT: no external call can re-enter a state-changing function.
        if (locked != 1) revert Reentrancy();
        locked = 2;
        _;
        locked = 1;
    }

    /// @notice Deploys against a Settlement contract (which must then `wire` this game).
    constructor(Settlement settlement_, Params memory params_) {
        settlement = settlement_;
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
    ///         `proof` places the job's leaf under the batch root.
    function open(uint256 batchId, uint256 jobIndex, Settlement.ClaimItem calldata item, address client, uint128 amount, bytes32[] calldata proof)
        external
        payable
        returns (uint256 gameId)
    {
        // INVARIANT: the bond is exact, the job is in the batch, a job is disputed by one game at a time
        // and never again once its provider lost.
        if (msg.value != params.challengerBond) revert BondMismatch(msg.value, params.challengerBond);
        bytes32 key = keccak256(abi.encode(batchId, jobIndex));
        uint8 st = jobState[key];
        if (st == 1 || st == 3) revert LeafAlreadyDisputed(batchId, jobIndex);
        (address provider, bytes32 root) = settlement.onDisputeOpened(batchId);
        if (!MerkleProof.verify(root, settlement.leafOf(item, client, amount), jobIndex, proof)) revert NotInBatch();
        jobState[key] = 1;
        totalBonds += msg.value;

        gameId = games.length;
        Game storage g = games.push();
        g.provider = provider;
        g.challenger = msg.sender;
        g.client = client;
        g.jobAmount = amount;
        g.bond = uint128(msg.value);
        g.batchId = batchId;
        g.jobIndex = jobIndex;
        emit DisputeOpened(gameId, batchId, msg.sender, jobIndex);
        _start(g, item);
    }

    /// @dev Level 0: the descent starts at the receipt's trace root.
    function _start(Game storage g, Settlement.ClaimItem calldata item) internal {
        uint64 nLeaves = traceLeafCount(item.nPrompt, item.nOutput, item.nLayer);
        uint8 depth = treeDepth(nLeaves);
        g.lastMove = uint64(block.timestamp);
        g.providerClock = params.clock;
        g.challengerClock = params.clock;
        g.phase = REVEAL;
        g.depthLeft = depth;
        g.levelDepth = depth;
        g.lastLeaf = nLeaves - 1;
        g.node = item.traceRoot;
        g.levelRoot = item.traceRoot;
        // The state before trace leaf 0 is the job's input (docs/CHAIN.md).
        g.pre = item.req.inputHash;
        // What the one-step judge needs from the signed request (the item is proven in the batch).
        g.modelRoot = item.req.modelRoot;
        g.seed = item.req.seed;
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
    function choose(uint256 gameId, bytes32[] calldata children, uint256 choice) external {
        Game storage g = _move(gameId, CHOOSE);
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
        if (left == 0) _leafReached(g);
        else g.phase = REVEAL;
    }

    /// @notice Provider: reveals the leaf before the disputed one, with its proof under the level root.
    function revealPre(uint256 gameId, bytes32 preLeaf, bytes32[] calldata proof) external {
        Game storage g = _move(gameId, REVEAL_PRE);
        if (proof.length != g.levelDepth || !MerkleProof.verify(g.levelRoot, preLeaf, g.index - 1, proof)) revert BadProof();
        g.pre = preLeaf;
        emit PreRevealed(gameId, g.level, g.index - 1, preLeaf);
        _segmentFound(g);
    }

    /// @notice Provider: commits the next level's sub-trace for the disputed transition: a tree of
    ///         depth `depth` whose leaf 0 is the pre-state and leaf `lastLeaf` the post-state.
    function expand(uint256 gameId, bytes32 root, uint8 depth, uint64 lastLeaf, bytes32[] calldata proofFirst, bytes32[] calldata proofLast) external {
        Game storage g = _move(gameId, EXPAND);
        // INVARIANT: the finer sub-trace starts and ends exactly at the disputed transition's states.
        if (depth > 48 || lastLeaf == 0 || lastLeaf >= (uint256(1) << depth)) revert BadProof();
        if (proofFirst.length != depth || proofLast.length != depth) revert BadProof();
        if (!MerkleProof.verify(root, g.pre, 0, proofFirst) || !MerkleProof.verify(root, g.post, lastLeaf, proofLast)) revert BadProof();
        g.level++;
        g.levelRoot = root;
        g.levelDepth = depth;
        g.node = root;
        g.depthLeft = depth;
        g.index = 0;
        g.minLeaf = 1;
        g.lastLeaf = lastLeaf;
        g.phase = REVEAL;
        emit Expanded(gameId, g.level, root, depth, lastLeaf);
    }

    /// @notice Provider: reveals the disputed micro-step (and its predecessor when it chains); the
    ///         contract executes it and decides the game.
    function step(uint256 gameId, OneStep.Step calldata pre, OneStep.Step calldata post) external {
        Game storage g = _move(gameId, STEP);
        if (OneStep.leafOf(post) != g.post) revert BadPreimage();
        uint32 prevResult;
        if (post.chain == 1) {
            // INVARIANT: a chained operand is checked against the agreed pre-state's preimage.
            if (OneStep.leafOf(pre) != g.pre) revert BadPreimage();
            prevResult = pre.result;
        }
        bool ok = OneStep.check(prevResult, post);
        _resolve(gameId, g, ok, ok ? "one step correct" : "one step wrong");
    }

    /// @notice Provider: reveals a disputed BLOCK_TERM micro-state (and block b - 1's when b > 0)
    ///         with the weight row it uses, proven against the job's model root; the contract
    ///         recomputes the block term and the SUM8 lane and decides the game.
    function stepBlockTerm(uint256 gameId, OneStep.BlockStep calldata pre, OneStep.BlockStep calldata post, OneStep.WeightProof calldata w) external {
        Game storage g = _move(gameId, STEP);
        if (OneStep.blockLeafOf(post) != g.post) revert BadPreimage();
        // INVARIANT: the lanes a block starts from are the agreed pre-state's (block 0: all zero).
        if (post.blockIndex > 0 && OneStep.blockLeafOf(pre) != g.pre) revert BadPreimage();
        bool ok = OneStep.checkBlockTerm(g.modelRoot, pre, post, w);
        _resolve(gameId, g, ok, ok ? "block term correct" : "block term wrong");
    }

    /// @notice Provider: reveals a disputed RAND micro-state; the contract recomputes
    ///         RAND(seed of the signed request, step) and decides the game.
    function stepRand(uint256 gameId, OneStep.RandStep calldata post) external {
        Game storage g = _move(gameId, STEP);
        if (OneStep.randLeafOf(post) != g.post) revert BadPreimage();
        bool ok = OneStep.checkRand(g.seed, post);
        _resolve(gameId, g, ok, ok ? "rand correct" : "rand wrong");
    }

    /// @notice Anyone: ends a game whose party to move ran out of clock; that party loses.
    function timeout(uint256 gameId) external {
        Game storage g = _game(gameId);
        if (g.phase >= PROVIDER_WON) revert GameOver(gameId);
        bool providerTurn = g.phase != CHOOSE;
        uint64 clock = providerTurn ? g.providerClock : g.challengerClock;
        uint64 spent = uint64(block.timestamp) - g.lastMove;
        // INVARIANT: a clock only ends the game once it is fully spent.
        if (spent <= clock) revert ClockRunning(gameId, clock - spent);
        _resolve(gameId, g, !providerTurn, providerTurn ? "provider timed out" : "challenger timed out");
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

    /// @dev Checks phase, turn and clock, and charges the mover's clock.
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
            g.providerClock -= spent;
        } else {
            if (spent > g.challengerClock) revert ClockExpired(gameId);
            g.challengerClock -= spent;
        }
        g.lastMove = uint64(block.timestamp);
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

    function _resolve(uint256 gameId, Game storage g, bool providerWon, string memory reason) internal {
        g.phase = providerWon ? PROVIDER_WON : CHALLENGER_WON;
        jobState[keccak256(abi.encode(g.batchId, g.jobIndex))] = providerWon ? 2 : 3;
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
        settlement.onDisputeResolved(g.batchId, !providerWon, g.client, g.jobAmount, g.challenger);
        emit Resolved(gameId, providerWon, reason);
    }
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {BadContributor, BadDataset, DatasetAlreadyRegistered, SharesNotWhole, UnknownDataset} from "./Errors.sol";

/// @title DatasetRegistry
/// @notice Datasets by Merkle root (docs/DATA.md: a root over the documents, and a manifest with
///         licence, source, contributors and their shares, hashed as `manifestHash`). Anyone may
///         register a root, once: the first registration of a root fixes its manifest hash,
///         licence and contributors for good ("first come": docs/CHAIN.md "Data provenance").
///         ModelRegistry deploys this contract and checks a training record's datasets against it;
///         Settlement pays a trained model's data share to these contributors by their shares.
contract DatasetRegistry {
    /// @notice One registered dataset (the licence and the contributors are beside it).
    struct Dataset {
        bytes32 manifestHash; // SHA-256 of the manifest's canonical JSON (src/data/dataset.ts)
        address registrant;
        uint64 registeredAt;
        uint16 nContributors;
    }

    /// @notice Shares are basis points of a dataset's payouts: they sum to exactly this.
    uint256 public constant TOTAL_BPS = 10_000;
    /// @notice Most contributors one dataset may list (bounds the registration's loop; payouts never loop).
    uint256 public constant MAX_CONTRIBUTORS = 256;
    /// @notice Longest licence text (an SPDX expression or "public-domain"), in bytes.
    uint256 public constant MAX_LICENCE_BYTES = 256;

    mapping(bytes32 => Dataset) private sets;
    mapping(bytes32 => string) private licences;
    mapping(bytes32 => address[]) private contributorLists;
    /// @dev shares[root][contributor]: basis points (0: not a contributor).
    mapping(bytes32 => mapping(address => uint256)) private shares;

    /// @notice Emitted once per dataset root.
    event DatasetRegistered(
        bytes32 indexed root, bytes32 manifestHash, string licence, address indexed registrant, address[] contributors, uint16[] sharesBps
    );

    /// @notice Registers dataset `root` with its manifest hash, licence and contributors (by anyone,
    ///         once). Reverts DatasetAlreadyRegistered; BadDataset for a zero root or manifest hash,
    ///         an empty or over-long licence, no contributors, too many, or lists of unequal length;
    ///         BadContributor(i) for the zero address, a zero share or an address listed twice;
    ///         SharesNotWhole when the shares do not sum to 10,000.
    function register(bytes32 root, bytes32 manifestHash, string calldata licence, address[] calldata contributors, uint16[] calldata sharesBps)
        external
    {
        // INVARIANT: a root is registered once; its entry never changes.
        if (sets[root].registrant != address(0)) revert DatasetAlreadyRegistered(root);
        if (root == bytes32(0)) revert BadDataset("root");
        if (manifestHash == bytes32(0)) revert BadDataset("manifestHash");
        if (bytes(licence).length == 0 || bytes(licence).length > MAX_LICENCE_BYTES) revert BadDataset("licence");
        uint256 n = contributors.length;
        if (n == 0 || n > MAX_CONTRIBUTORS || sharesBps.length != n) revert BadDataset("contributors");
        mapping(address => uint256) storage s = shares[root];
        uint256 sum;
        for (uint256 i = 0; i < n; i++) {
            address a = contributors[i];
            uint256 bps = sharesBps[i];
            // INVARIANT: every contributor is a real address with a positive share, listed once
            // (a listed address already holds a non-zero share).
            if (a == address(0) || bps == 0 || s[a] != 0) revert BadContributor(i, a);
            s[a] = bps;
            sum += bps;
        }
        // INVARIANT: the shares are a whole: payouts split exactly 100% among the contributors.
        if (sum != TOTAL_BPS) revert SharesNotWhole(sum);
        sets[root] = Dataset(manifestHash, msg.sender, uint64(block.timestamp), uint16(n));
        licences[root] = licence;
        contributorLists[root] = contributors;
        emit DatasetRegistered(root, manifestHash, licence, msg.sender, contributors, sharesBps);
    }

    /// @notice The entry of `root`; reverts UnknownDataset if none.
    function get(bytes32 root) external view returns (Dataset memory d) {
        d = sets[root];
        if (d.registrant == address(0)) revert UnknownDataset(root);
    }

    /// @notice The licence `root` was registered with; reverts UnknownDataset if none.
    function licenceOf(bytes32 root) external view returns (string memory) {
        if (sets[root].registrant == address(0)) revert UnknownDataset(root);
        return licences[root];
    }

    /// @notice The contributors of `root` and their shares (basis points), in registration order.
    function contributorsOf(bytes32 root) external view returns (address[] memory list, uint16[] memory bps) {
        if (sets[root].registrant == address(0)) revert UnknownDataset(root);
        list = contributorLists[root];
        bps = new uint16[](list.length);
        for (uint256 i = 0; i < list.length; i++) {
            bps[i] = uint16(shares[root][list[i]]);
        }
    }

    /// @notice The share of `contributor` in `root`'s payouts, in basis points (0 when not listed or not registered).
    function shareOf(bytes32 root, address contributor) external view returns (uint256) {
        return shares[root][contributor];
    }

    /// @notice True when `root` is registered.
    function isRegistered(bytes32 root) external view returns (bool) {
        return sets[root].registrant != address(0);
    }
}

import './polyfill.js'
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { generatePrivateKey, privateKeyToAddress } from 'viem/accounts'
import { addressOfPeer, identityFromKey } from './identity.js'

test('a node key gives a secp256k1 PeerId whose address is the key\'s chain account', () => {
  for (let i = 0; i < 5; i++) {
    const key = generatePrivateKey()
    const id = identityFromKey(key)
    assert.equal(id.peerId.type, 'secp256k1')
    assert.equal(id.address, privateKeyToAddress(key))
    assert.equal(addressOfPeer(id.peerId), privateKeyToAddress(key))
    assert.equal(addressOfPeer(id.peerId.toString()), privateKeyToAddress(key))
  }
})

test('the same key always gives the same PeerId', () => {
  const key = generatePrivateKey()
  assert.equal(identityFromKey(key).peerId.toString(), identityFromKey(key).peerId.toString())
})

test('an Ed25519 peer, a garbage id and a bad key are refused', async () => {
  const ed = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  assert.throws(() => addressOfPeer(ed), { name: 'InvalidIdentityError' })
  assert.throws(() => addressOfPeer('not-a-peer-id'), { name: 'InvalidIdentityError' })
  assert.throws(() => identityFromKey('0x1234'), { name: 'InvalidIdentityError' })
  assert.throws(() => identityFromKey(`0x${'00'.repeat(32)}`), { name: 'InvalidIdentityError' })
  assert.throws(() => identityFromKey(`0x${'ff'.repeat(32)}`), { name: 'InvalidIdentityError' })
})

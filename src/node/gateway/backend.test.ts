import assert from 'node:assert/strict'
import { test } from 'node:test'
import { DEFAULT_MODEL_PATH } from '../../runtime/defaultModel.js'
import { loadModel } from '../../runtime/model.js'
import { gatewayModelOf } from './backend.js'

test('model ids are URL- and shell-safe: other characters in general.name become one "-"', async () => {
  const model = await loadModel(DEFAULT_MODEL_PATH)
  try {
    assert.equal(model.metadata.get('general.name')?.value, 'tessera-default-1m (q8_0)')
    const gm = gatewayModelOf(model)
    assert.equal(gm.name, 'tessera-default-1m-q8_0')
    assert.equal(gm.id, `tessera-default-1m-q8_0@${gm.root.slice(2, 18)}`)
    assert.equal(gatewayModelOf(model, { name: ' my model/v2 (test) ' }).name, 'my-model-v2-test')
  } finally {
    model.close()
  }
})

/** `node dist/examples/cdktf/main.js` (the `app` of cdktf.json): synthesises the quickstart stack into cdktf.out/. */
import { App } from '../../constructs/cdktf';
import { QuickstartStack } from './stack';

const app = new App();
new QuickstartStack(app, 'quickstart');
app.synth();

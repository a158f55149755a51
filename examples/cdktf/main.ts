/** `node dist/examples/cdktf/main.js` (the `app` of cdktf.json): synthesises the example stack into cdktf.out/. */
import { App } from '../../constructs/cdktf'; // in your project: from 'cdktf'
import { QuickstartStack } from './stack';

const app = new App();
new QuickstartStack(app, 'quickstart');
app.synth();

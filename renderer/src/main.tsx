import { firstScreen, rpc } from './link';
import { start } from './start';
import './styles.css';

const root = document.getElementById('root');
if (root) start(root, rpc, firstScreen);
